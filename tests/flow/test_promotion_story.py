"""Issue 14's story in one piece, on the local cloud (moto server, the API over HTTP with tokens, the
event runtime, training as a child process, IAM as deployed): generated store sales uploaded as a
user would, and every judgment the registry makes checked from the outside.

1. Two clean days: the first champion v1 (a one-split forest).
2. Day 1 re-exported (gzip, rows reversed, another name): valid, every row a repeat, no new data for
   the retrain policy, no run.
3. ``region`` stops being a feature and the model goes linear: v2 waits for approval, the reason
   naming the removed feature; approved: a feature removal promoted.
4. Day 2 arrives with ads scaled by three, within the contract: v3 is better on the whole holdout but
   worse on the rows the champion was judged on: not promoted, it waits. A person approves it anyway.
5. Day 2 is revoked (an admin, with a reason): v3 is tainted and stops answering; the champion falls
   back to v2 (an audited rollback by the admin); a retrain without day 2 starts by itself: its
   version never saw day 2, and rebuilds v2 exactly (rejected: nothing to promote).
6. A person rolls v2 back; the retrain after it rebuilds v2's model from the same data and settings:
   rejected, the reason naming the rollback. The rollback sticks.
7. The champion history at three instants, from the audit ledger.
8. Twenty rounds of concurrent approve, reject and rollback calls on the model: no 5xx, and each
   round's outcome is one a serial order of its winning calls explains (tests/flow/test_registry_races.py).
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import boto3

from chalicelib.adapters import aws
from chalicelib.adapters.aws.registry import DynamoRegistry
from chalicelib.adapters.aws.runs import DynamoRunsStore
from chalicelib.adapters.aws.tokens import SsmTokenRecords
from chalicelib.adapters.memory.registry import MemoryRegistry
from chalicelib.auth import TokenStore
from chalicelib.ingest import upload_id_for
from chalicelib.registry.states import Champion
from chalicelib.settings import Settings
from mlops.datasets import sales_contract, sales_rows, to_csv
from mlops.demo import http
from tests.flow import test_registry_races as races
from tests.support import PYTHON_REPR, wait_until

SALES = "store_sales"
STUMP = {"family": "random_forest", "params": {"n_estimators": 1, "max_depth": 1}}
ROUNDS = 20


def test_the_promotion_story_on_real_mechanics(local_cloud):
    aws.reset_clients()
    settings = Settings.from_env()
    api = str(local_cloud.api_url)
    store = TokenStore(SsmTokenRecords.for_settings(settings))
    people = (("ops", "admin"), ("vic", "viewer"), *((p, "approver") for p in races.PEOPLE))  # alice, bob...
    token = {name: store.create(name, role, created_by="tests", replace=True)[0] for name, role in people}
    local_cloud.tokens = token  # the rounds' callers (tests/flow/test_registry_races.py)
    registry = DynamoRegistry(settings.registry_table, settings.audit_table)
    runs = DynamoRunsStore(settings.runs_table)
    s3 = boto3.client("s3")

    def contract(model: dict[str, Any], version: int, **region: Any) -> None:
        doc = sales_contract(model)
        doc["version"] = version
        doc["training"]["retrain"] = {"min_new_rows": 400, "cooldown_minutes": 0, "on_drift": False}
        doc["columns"] = [{**c, **region} if c["name"] == "region" else c for c in doc["columns"]]
        status, body = http("PUT", f"{api}/datasets/{SALES}/contract", doc, token["ops"])
        assert status == 200, body

    def upload(name: str, data: bytes) -> str:
        key = f"incoming/{SALES}/{name}"
        put = s3.put_object(Bucket=settings.data_bucket, Key=key, Body=data)
        return upload_id_for(settings.data_bucket, key, put["VersionId"])

    def day(n: int, **corruption: Any) -> tuple[list[str], list[list[str]]]:
        return sales_rows(240, start=240 * n, seed=n, **corruption)

    def entry(upload_id: str) -> dict[str, Any]:
        doc = wait_until(
            lambda: (lambda s, b: b if s == 200 else None)(*http("GET", f"{api}/uploads/{upload_id}"))
        )
        assert doc, f"upload {upload_id} was never recorded"
        return dict(doc)

    def judged(version: int) -> dict[str, Any]:
        """The version once judged, and its run's lock released (so another retrain may start)."""
        doc = wait_until(
            lambda: (
                (registry.version(SALES, version) or {}).get("status") not in (None, "candidate", "approved")
                and runs.state(SALES).run_in_flight is None
                and registry.version(SALES, version)
            )
        )
        assert doc, f"v{version} was never judged"
        return dict(doc)

    def call(method: str, path: str, body: Any, who: str, expect: int = 200) -> Any:
        status, answer = http(method, f"{api}{path}", body, token[who])
        assert status == expect, (status, answer)
        return answer

    def predict(path: str) -> tuple[int, Any]:
        records = [{"price": 20.0, "ads": 10.0, "footfall": 500}]  # region is no feature from v2 on
        return http("POST", f"{api}/models/{SALES}{path}", {"records": records}, token["vic"])

    # 1. Two clean days (480 new rows >= 400): the first champion.
    contract(STUMP, 1)
    days = [upload("day0.csv", to_csv(*day(0))), upload("day1.csv", to_csv(*day(1)))]
    v1 = judged(1)
    assert v1["status"] == "champion" and sorted(v1["trained_on"]) == sorted(days)

    # 2. Day 1 again, re-exported: every row repeats an earlier upload, none counts, no run starts.
    header, rows = day(1)
    export = upload("day1-export.csv.gz", gzip.compress(to_csv(header, rows[::-1])))
    again = entry(export)
    assert again["status"] == "valid" and (again["new_rows"], again["repeated_rows"]) == (0, 240), again
    assert runs.state(SALES).rows_since_training == 0 and len(runs.list_runs(SALES)) == 1

    # 3. A feature removal: better, waits, the reason names it; approved, it is the champion.
    contract({"family": "linear_regression"}, 2, feature=False)
    call("POST", f"/datasets/{SALES}/retrain", {"reason": "drop region, go linear"}, "ops", 202)
    v2 = judged(2)
    assert v2["status"] == "pending_approval", v2["gates"]["reason"]
    assert "feature region removed" in v2["gates"]["reason"] and "undefined" not in v2["gates"]["reason"]
    call("POST", f"/models/{SALES}/versions/2/approve", {"reason": "told the callers"}, "alice")
    assert registry.champion(SALES) == 2

    # 4. A corrupted day within the contract: not promoted (worse on the earlier slice); approved anyway.
    corrupted = upload("day2.csv", to_csv(*day(2, ads_factor=3.0)))
    assert entry(corrupted)["new_rows"] == 240
    call("POST", f"/datasets/{SALES}/retrain", {"reason": "new day"}, "ops", 202)
    v3 = judged(3)
    gates = v3["gates"]
    assert v3["status"] == "pending_approval" and "earlier_slice" in gates["reason"], gates["reason"]
    earlier = gates["slices"]["earlier"]["metrics"]
    assert earlier["candidate"]["rmse"] > earlier["champion"]["rmse"]
    assert gates["metrics"]["candidate"]["rmse"] < gates["metrics"]["champion"]["rmse"]
    assert {u["upload"] for u in gates["slices"]["new"]["uploads"]} == {corrupted}
    call("POST", f"/models/{SALES}/versions/3/approve", {"reason": "the ads team says it is fine"}, "alice")
    assert predict("/predict")[1]["version"] == 3

    # 5. Revoke day 2: only an admin may; it taints v3, falls back to v2, retrains without day 2.
    lineage = call("GET", f"/uploads/{corrupted}/models", None, "vic")
    assert [(v["version"], v["trained"], v["evaluated"], v["champion"]) for v in lineage["versions"]] == [
        (3, True, True, True)
    ]
    assert http("POST", f"{api}/uploads/{corrupted}/revoke", {"reason": "x"}, token["alice"])[0] == 403
    status, refused = http("POST", f"{api}/uploads/{corrupted}/revoke", {"reasn": "x"}, token["ops"])
    assert status == 400 and "reasn" in refused["Message"]
    revoked = call("POST", f"/uploads/{corrupted}/revoke", {"reason": "ads exported in cents"}, "ops")
    assert revoked["tainted"] == [3] and revoked["rejected"] == []
    champion = revoked["champion"]
    assert champion["tainted"] and champion["fallback"]["to_version"] == 2
    assert champion["fallback"]["action"] == "rollback" and champion["retrain"]["action"] == "launch"
    assert registry.champion(SALES) == 2
    fallback = registry.audit(SALES)[-1]
    assert (fallback["action"], fallback["who"], fallback["to_version"]) == ("rollback", "ops (admin)", 2)
    status, again_revoked = http(
        "POST", f"{api}/uploads/{corrupted}/revoke", {"reason": "twice"}, token["ops"]
    )
    assert status == 409 and "revoked already, by ops (admin)" in again_revoked["Message"]
    tainted = registry.version(SALES, 3)["tainted"][corrupted]
    assert (tainted["trained"], tainted["evaluated"], tainted["by"]) == (True, True, "ops (admin)")
    # A warm API process re-reads a version's record once per champion pointer TTL: within it, 409.
    status, answer = wait_until(
        lambda: (lambda s, a: (s, a) if s == 409 else None)(*predict("/versions/3/predict"))
    )
    assert status == 409 and f"is tainted: trained and evaluated on upload {corrupted}" in answer["Message"]
    v4 = judged(4)
    assert corrupted not in v4["trained_on"] and sorted(v4["trained_on"]) == sorted([*days, export])
    # Without day 2 the snapshot is v2's again: the retrain rebuilds the fallback champion, said so.
    assert v4["status"] == "rejected" and v4["fingerprint"] == registry.version(SALES, 2)["fingerprint"]
    assert v4["gates"]["reason"].startswith(
        "same_as_champion: the same data snapshot and training settings built the champion v2"
    )
    run = runs.get_run(v4["run_id"])
    assert any("ads exported in cents" in r for r in run["reasons"]), run["reasons"]
    assert wait_until(lambda: predict("/predict")[1].get("version") == 2)  # the fallback serves

    # 6. A rollback that sticks: v2 rolled back (the fallback undid v3's approval, so this undoes
    # v2's); its rebuild from the same data and settings is rejected.
    assert registry.champion(SALES) == 2, registry.audit(SALES)[-1]
    rolled = call("POST", f"/models/{SALES}/rollback", {"reason": "units forecasts went wrong"}, "alice")
    assert rolled["champion"] == 1 and rolled["audit"]["undoes"] == 2
    call("POST", f"/datasets/{SALES}/retrain", {"reason": "try again"}, "ops", 202)
    v5 = judged(5)
    reason = v5["gates"]["reason"]
    assert v5["status"] == "rejected" and registry.champion(SALES) == 1
    assert "v2" in reason and "rolled back" in reason and "alice (approver)" in reason, reason
    assert v5["fingerprint"] == registry.version(SALES, 2)["fingerprint"]

    # 7. What served when: at three instants between the ledger's changes.
    ledger = registry.audit(SALES)
    assert [(e["action"], e["from_version"], e["to_version"]) for e in ledger] == [
        ("promote", None, 1), ("promote", 1, 2), ("promote", 2, 3), ("rollback", 3, 2), ("rollback", 2, 1)
    ]  # fmt: skip
    for before, after in ((ledger[0], ledger[1]), (ledger[2], ledger[3]), (ledger[3], ledger[4])):
        middle = (
            datetime.fromisoformat(before["at"])
            + (datetime.fromisoformat(after["at"]) - datetime.fromisoformat(before["at"])) / 2
        )
        at = middle.isoformat() if after["at"] > before["at"] else before["at"]
        doc = call("GET", f"/models/{SALES}/champion?at={quote(at)}", None, "vic")
        assert doc["champion"] == before["to_version"] and doc["change"]["seq"] == before["seq"], doc
    first = call("GET", f"/models/{SALES}/champion?at={quote(_earlier(ledger[0]['at']))}", None, "vic")
    assert first["champion"] is None

    # 8. Twenty rounds of concurrent approve / reject / rollback: no 5xx, each explained serially.
    reference = _mirror(registry, SALES)
    for r in range(ROUNDS):
        a = races._waiting(registry, f"story-round-{r}-a", SALES)
        b = races._waiting(registry, f"story-round-{r}-b", SALES)
        assert (
            races._waiting(reference, f"story-round-{r}-a", SALES),
            races._waiting(reference, f"story-round-{r}-b", SALES),
        ) == (a, b)
        ops = [
            ("approve", a, "alice"),
            ("approve", a, "bob"),
            ("reject", a if r % 2 == 0 else b, "carol"),
            ("approve", b, "dave"),
            ("rollback", None, "alice"),
        ]
        answers = races._at_once(local_cloud, ops, SALES)
        codes = [answers[i][0] for i in range(len(ops))]
        assert set(codes) <= {200, 409}, [answers[i] for i in range(len(ops))]
        messages = [json.loads(answers[i][1])["Message"] for i in range(len(ops)) if codes[i] == 409]
        assert not [m for m in messages if PYTHON_REPR.search(m)], messages
        won = [i for i in range(len(ops)) if codes[i] == 200]
        lost = [i for i in range(len(ops)) if codes[i] == 409]
        found = races._linearization(reference, ops, won, lost, races._state(registry, SALES), SALES)
        assert found is not None, json.dumps({"round": r, "ops": ops, "answers": answers}, default=str)
        reference = found


def _earlier(at: str) -> str:
    return (datetime.fromisoformat(at) - timedelta(seconds=1)).isoformat()


def _mirror(real: DynamoRegistry, model: str) -> MemoryRegistry:
    """An in-memory registry holding what the real one holds for ``model``: the reference the rounds
    are replayed on (the same versions, transitions, pointer and ledger)."""
    mirror = MemoryRegistry()
    state = mirror._model(model)
    for doc in real.versions(model):
        state.versions[int(doc["version"])] = doc
        state.candidates[str(doc["candidate_id"])] = int(doc["version"])
    state.last_version = max(state.versions)
    state.ledger = real.audit(model)
    champion = real.champion(model)
    state.champion = Champion(champion, int(state.ledger[-1]["seq"])) if champion is not None else None
    return mirror
