"""The contract route refuses a broken section of a later stage (training, promotion), naming the
field: validation does not import those stages, so this proves the API's wiring registers their
checks (chalice.test.Client on in-process moto, with real tokens)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from app import app
from mlops.datasets import breast_cancer_contract


@pytest.mark.parametrize(
    "section, value, field",
    [
        (
            "training",
            {"model": {"family": "random_forest", "params": {"max_dept": 5}}},
            "training.model.params",
        ),
        ("promotion", {"mode": "sometimes"}, "promotion.mode"),
    ],
)
def test_contract_with_a_broken_later_stage_section_is_refused_and_not_stored(
    aws: Any, tokens: dict[str, dict[str, str]], section: str, value: Any, field: str
) -> None:
    doc = breast_cancer_contract()
    doc[section] = value
    with Client(app, stage_name="local") as client:
        response = client.http.put(
            f"/datasets/{doc['dataset']}/contract", body=json.dumps(doc), headers=tokens["admin"]
        )
        assert response.status_code == 400
        assert field in response.json_body["Message"]
        assert client.http.get(f"/datasets/{doc['dataset']}/contract").status_code == 404
