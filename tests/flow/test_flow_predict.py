"""Flow on the local cloud (moto server, the Chalice API over HTTP, the event runtime): a candidate's
manifest reaches evaluate_candidate through S3 -> SQS, becomes champion, and `mlops predict` scores a
CSV and a JSON file through the HTTP API."""

from __future__ import annotations

import csv
import io
import json

from chalicelib.adapters import aws
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.adapters.aws.registry import DynamoRegistry
from chalicelib.settings import Settings
from mlops.cli import main as mlops
from tests.support import DATASET, built, contract_for, publish, wait_until


def test_a_published_candidate_becomes_champion_and_mlops_predict_scores_a_file(
    local_cloud, tmp_path, capsys, monkeypatch
):
    aws.reset_clients()
    settings = Settings.from_env()
    S3ContractStore(settings.data_bucket).put(contract_for())
    publish(settings, "forest")
    registry = DynamoRegistry(settings.registry_table, settings.audit_table)
    assert wait_until(lambda: registry.champion(DATASET) == 1)

    artifacts, _ = built("forest")
    holdout = artifacts["holdout.csv"].decode()
    rows = list(csv.DictReader(io.StringIO(holdout)))[:7]
    csv_file = tmp_path / "patients.csv"
    csv_file.write_text(holdout.split("\n", 1)[0] + "\n" + "\n".join(holdout.split("\n")[1:8]) + "\n")
    monkeypatch.setenv("MLOPS_API_URL", str(local_cloud.api_url))
    capsys.readouterr()
    assert mlops(["predict", DATASET, str(csv_file), "--json"]) == 0
    out = _printed(capsys.readouterr().out)
    assert out["version"] == 1 and len(out["predictions"]) == 7
    assert {p["prediction"] for p in out["predictions"]} <= {0, 1}
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-9 for p in out["predictions"])

    names = json.loads(artifacts["input_schema.json"])["features"]
    records = [{f["name"]: float(row[f["name"]]) for f in names} for row in rows]
    json_file = tmp_path / "patients.json"
    json_file.write_text(json.dumps({"records": records}))
    assert mlops(["predict", DATASET, str(json_file), "--json"]) == 0
    again = _printed(capsys.readouterr().out)
    assert again["predictions"] == out["predictions"]  # the CSV was typed by the model's schema

    assert mlops(["predict", DATASET, str(csv_file)]) == 0
    table = capsys.readouterr().out
    assert f"{DATASET} v1: 7 prediction(s)" in table and "p(1)=" in table
    assert mlops(["predict", "nothing", str(csv_file)]) == 1
    assert "404" in capsys.readouterr().err


def _printed(stdout: str) -> dict:
    """The CLI's JSON document (the local cloud's functions log to the same stdout)."""
    start = stdout.index('{\n  "model"')
    doc, _ = json.JSONDecoder().raw_decode(stdout[start:])
    return dict(doc)
