"""The body the predict routes take, declared once (``chalicelib.http.Body``): ``{"records": [...]}``.

Only the envelope is declared here: each record is checked against the version's input schema
(``chalicelib.serving.schema``), which names the record and the feature of every problem. Light on
purpose (no numpy): the API imports it when it starts.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta

from chalicelib.http import Body

MAX_RECORDS = 1000


class PredictRequest(Body):
    records: Annotated[
        list[Any],
        Meta(
            min_length=1,
            max_length=MAX_RECORDS,
            description=f"a list of 1 to {MAX_RECORDS:,} records (objects of the model's features) per request",
        ),
    ]
