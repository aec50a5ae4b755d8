"""The body the predict routes take, declared once (``chalicelib.http.Body``): ``{"records": [...]}``
and, optionally, ``"routing_key"``.

Only the envelope is declared here: each record is checked against the version's input schema
(``chalicelib.serving.schema``), which names the record and the feature of every problem. Light on
purpose (no numpy): the API imports it when it starts.

``routing_key`` (1 to ``routing.MAX_ROUTING_KEY`` characters, e.g. a user id) decides which version
answers while the model is being rolled out (``chalicelib.serving.routing``): the same key always
gets the same version within a step, so one user sees one model. Without it the request id decides
(a fresh one per request). A pinned route (``/versions/{v}/predict``) takes it and ignores it.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta

from chalicelib.http import Body
from chalicelib.serving.routing import MAX_ROUTING_KEY

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
    routing_key: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=MAX_ROUTING_KEY,
                description=f"text of 1 to {MAX_ROUTING_KEY} characters (e.g. a user id) that picks the "
                "version answering during a rollout: the same key, the same version",
            ),
        ]
        | None
    ) = None
