"""The body ``POST /models/{name}/outcomes`` takes, declared once (``chalicelib.http.Body``).

Only the envelope is declared here: each item is checked against the model's contract
(``chalicelib.monitoring.outcomes``), which names the item and the field of every problem. Light on
purpose (no numpy): the API imports it when it starts.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta

from chalicelib.http import Body

MAX_OUTCOMES = 1000


class OutcomesRequest(Body):
    outcomes: Annotated[
        list[Any],
        Meta(
            min_length=1,
            max_length=MAX_OUTCOMES,
            description=(
                f'a list of 1 to {MAX_OUTCOMES:,} outcomes, each {{"request_id", "index"?, "label"}} '
                'or {"row_id", "label"}'
            ),
        ),
    ]
