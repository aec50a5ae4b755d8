"""A scenario for the web console: what a person opening it after a few days of use would find.

Run against a started local cloud, through real calls (S3 puts, the HTTP API, the event runtime,
training runs in the local "spot" job, the evaluator): a contract; five daily uploads of scikit-learn's
breast-cancer set (three good, one malformed, one drifted), validated with their reports; a first
run whose stump becomes the champion; a second run, under ``promotion.mode`` manual, whose better
model waits for approval. Used by the browser tests (tests/e2e/test_console_browser.py) and by
``scripts/mlops/console_screenshots.py``.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops.datasets import breast_cancer_contract, breast_cancer_rows, drifted, to_csv
from mlops.demo import PROMOTION, http

DATASET = "breast_cancer"
STUMP = {"family": "random_forest", "params": {"n_estimators": 1, "max_depth": 1}}
REGRESSION = {"family": "logistic_regression", "params": {"C": 1.0, "max_iter": 1000}}
HANG_S = 300.0  # only a guard against a hang: every wait ends on a recorded outcome


@dataclass
class Scenario:
    api: str
    tokens: dict[str, str]  # role -> token
    uploads: dict[str, str] = field(default_factory=dict)  # what it is -> upload id
    champion: int | None = None
    pending: int | None = None
    runs: list[str] = field(default_factory=list)


def wait_for(predicate: Callable[[], Any], timeout_s: float = HANG_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def run(api: str, say: Callable[[str], None] = lambda _: None) -> Scenario:
    """Build the scenario on the local cloud this process is connected to (``AWS_ENDPOINT_URL`` and
    the stage's variables set, as ``LocalCloud.start`` leaves them)."""
    from chalicelib import bootstrap
    from chalicelib.adapters import aws
    from chalicelib.adapters.aws.tokens import SsmTokenRecords
    from chalicelib.auth import TokenStore
    from chalicelib.ingest import upload_id_for

    settings = bootstrap.settings()
    store = TokenStore(SsmTokenRecords.for_settings(settings))
    tokens = {
        role: store.create(name, role, created_by="console scenario", replace=True)[0]
        for name, role in (("vera", "viewer"), ("alice", "approver"), ("ops", "admin"))
    }
    scenario = Scenario(api=api, tokens=tokens)

    contract = breast_cancer_contract()
    contract["training"]["model"] = STUMP
    # Runs start when asked (below), not on upload counts or drift, so the story is the same each time.
    contract["training"]["retrain"] = {"min_new_rows": 1_000_000, "on_drift": False, "cooldown_minutes": 0}
    contract["promotion"] = PROMOTION
    _put_contract(api, tokens["admin"], contract)
    say(f"contract of {DATASET!r} stored")

    header, rows = breast_cancer_rows()
    bad = [list(r) for r in rows[330:440]]
    bad[3][-1] = "2"  # a diagnosis the contract does not allow
    bad[10][5] = "nan"
    bad[20][0] = "=cmd|' /C calc'!A0"  # formula injection in the id
    bad[30][0] = bad[31][0]  # the same patient twice
    plan = [
        ("day 1", to_csv(header, rows[0:110])),
        ("day 2", to_csv(header, rows[110:220])),
        ("day 3", to_csv(header, rows[220:330])),
        ("malformed", to_csv(header, bad)),
        ("drifted", to_csv(header, drifted(header, rows[440:]))),
    ]
    s3, ledger = aws.client("s3"), bootstrap.uploads()
    for day, (what, body) in enumerate(plan, start=1):
        key = f"incoming/{DATASET}/2026-11-0{day}.csv"
        put = s3.put_object(Bucket=settings.data_bucket, Key=key, Body=body)
        upload = scenario.uploads[what] = upload_id_for(settings.data_bucket, key, put["VersionId"])
        # One at a time, so the ledger's order is the days' order (and the first is the reference).
        if not wait_for(functools.partial(ledger.get, upload)):
            raise RuntimeError(f"upload {key} was never recorded")
    say("five uploads validated")

    first = _retrain(scenario, "a first model")
    scenario.champion = (
        int(wait_for(lambda: _version_of(api, tokens["viewer"], first, "champion")) or 0) or None
    )
    if scenario.champion is None:
        raise RuntimeError(f"run {first}'s candidate did not become the champion")
    say(f"v{scenario.champion} is the champion")

    contract["version"] += 1
    contract["training"]["model"] = REGRESSION
    contract["promotion"] = {**PROMOTION, "mode": "manual", "min_delta": 0.0}
    _put_contract(api, tokens["admin"], contract)
    second = _retrain(scenario, "a logistic regression, reviewed by a person")
    scenario.pending = (
        int(wait_for(lambda: _version_of(api, tokens["viewer"], second, "pending_approval")) or 0) or None
    )
    if scenario.pending is None:
        raise RuntimeError(f"run {second}'s candidate is not waiting for approval")
    say(f"v{scenario.pending} waits for approval")
    return scenario


def _put_contract(api: str, token: str, contract: dict[str, Any]) -> None:
    status, body = http("PUT", f"{api}/datasets/{DATASET}/contract", contract, token)
    if status != 200:
        raise RuntimeError(f"PUT contract -> {status} {json.dumps(body)}")


def _retrain(scenario: Scenario, reason: str) -> str:
    api, admin = scenario.api, scenario.tokens["admin"]
    # A run asked for while the last one still holds the dataset's lock is refused (409): ask again.
    answer: dict[str, Any] = {}

    def ask() -> bool:
        status, body = http("POST", f"{api}/datasets/{DATASET}/retrain", {"reason": reason}, admin)
        answer.update(body)
        return status == 202

    if not wait_for(ask):
        raise RuntimeError(f"retrain refused: {answer}")
    run_id = str(answer["run_id"])
    scenario.runs.append(run_id)

    def over() -> dict[str, Any] | None:
        status, doc = http("GET", f"{api}/runs/{run_id}", token=scenario.tokens["viewer"])
        return doc if status == 200 and doc.get("status") in ("succeeded", "failed") else None

    run = wait_for(over)
    if not run or run["status"] != "succeeded":
        raise RuntimeError(f"run {run_id} did not succeed: {run}")
    return run_id


def _version_of(api: str, token: str, run_id: str, status: str) -> int | None:
    """The version the run's candidate became, once it has ``status``."""
    code, model = http("GET", f"{api}/models/{DATASET}", token=token)
    if code != 200:
        return None
    for summary in model.get("versions", []):
        code, version = http("GET", f"{api}/models/{DATASET}/versions/{summary['version']}", token=token)
        if code == 200 and version.get("run_id") == run_id and version.get("status") == status:
            return int(version["version"])
    return None
