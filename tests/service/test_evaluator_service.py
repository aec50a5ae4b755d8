"""The promotion evaluator on in-memory adapters: real candidates (scikit-learn -> ONNX by the training
job's own code, scored by onnxruntime), published into an in-memory versioned bucket as the job
publishes them; the registry, the contracts and the notifier in memory. No AWS, no moto."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib import notify
from chalicelib.adapters.memory.artifacts import MemoryArtifacts
from chalicelib.adapters.memory.notifier import MemoryNotifier
from chalicelib.adapters.memory.registry import MemoryRegistry
from chalicelib.errors import RegistryError
from chalicelib.registry.evaluator import evaluate_manifest
from chalicelib.registry.ports import EvaluatorPorts
from chalicelib.validation import Contract, NoContract
from mlops.datasets import sales_contract, sales_rows, to_csv
from tests.support import DATASET, build_from_uploads, built, contract_for

BUCKET = "models"


class Contracts:
    """The contract reader in memory: the datasets' current contracts."""

    def __init__(self, *contracts: Contract) -> None:
        self.contracts = {c.dataset: c for c in contracts}

    def put(self, contract: Contract) -> None:
        self.contracts[contract.dataset] = contract

    def get(self, dataset: str) -> Contract:
        if dataset not in self.contracts:
            raise NoContract(f"no contract for dataset {dataset!r}")
        return self.contracts[dataset]


@dataclass
class Revoked:
    """Revoked uploads, as the uploads ledger keeps them (who, when, why)."""

    revoked_by: str = "ops (admin)"
    revoked_reason: str = "ads exported in cents"
    revoked_at: str = "2026-11-30T13:00:00+00:00"


class Revocations:
    def __init__(self) -> None:
        self.entries: dict[str, Revoked] = {}

    def revoked(self, dataset: str) -> frozenset[str]:
        return frozenset(self.entries)

    def get(self, upload_id: str) -> Revoked | None:
        return self.entries.get(upload_id)


@dataclass
class World:
    registry: MemoryRegistry
    artifacts: MemoryArtifacts
    contracts: Contracts
    notifier: MemoryNotifier
    revocations: Revocations = field(default_factory=Revocations)

    @property
    def ports(self) -> EvaluatorPorts:
        return EvaluatorPorts(
            self.registry, self.artifacts, self.contracts, self.notifier, revocations=self.revocations
        )

    def inbox(self) -> list[dict[str, Any]]:
        """The notifications so far, as a subscriber reads them (the type beside the detail)."""
        return [{"type": detail_type, **detail} for detail_type, detail in self.notifier.messages]


@pytest.fixture
def world() -> World:
    return World(MemoryRegistry(), MemoryArtifacts(), Contracts(contract_for()), MemoryNotifier())


def publish(world: World, model: str, run_id: str | None = None, tamper: str | None = None) -> str:
    """Publish a candidate as the training job does (artifacts, then the manifest); its manifest key."""
    run_id = run_id or f"{DATASET}-{model}-{uuid.uuid4().hex[:8]}"
    return publish_built(world, *built(model), run_id=run_id, tamper=tamper)


def publish_built(
    world: World,
    artifacts: dict[str, bytes],
    fields: dict[str, Any],
    run_id: str | None = None,
    tamper: str | None = None,
) -> str:
    """Publish built artifacts as the job publishes them (manifest last); the manifest key."""
    dataset = fields["dataset"]
    run_id = run_id or f"{dataset}-{uuid.uuid4().hex[:8]}"
    prefix = f"models/{dataset}/candidates/{run_id}/"
    entries = []
    for name, data in artifacts.items():
        world.artifacts.put(BUCKET, prefix + name, data)
        entries.append(
            {
                "name": name,
                "key": prefix + name,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    manifest = {
        **fields,
        "run_id": run_id,
        "artifacts": entries,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    world.artifacts.put(BUCKET, prefix + "manifest.json", json.dumps(manifest).encode())
    if tamper:  # one bit of the object changes after the manifest recorded its checksum (same size)
        data = artifacts[tamper]
        world.artifacts.put(BUCKET, prefix + tamper, data[:-1] + bytes([data[-1] ^ 1]))
    return prefix + "manifest.json"


def evaluate(world: World, key: str) -> dict[str, Any]:
    """The manifest's notification delivered to the evaluator (with the version id S3 reports)."""
    stored = world.artifacts.read(BUCKET, key)
    assert stored is not None
    return evaluate_manifest(world.ports, BUCKET, key, stored.version_id)


def _gates(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["name"]: g for g in doc["gates"]["gates"]}


# --- decisions -----------------------------------------------------------------------------------------


def test_first_candidate_is_judged_on_floors_and_becomes_champion(world):
    key = publish(world, "stump")
    outcome = evaluate(world, key)
    assert outcome["action"] == "promoted" and outcome["from_version"] is None
    registry = world.registry
    assert registry.champion(DATASET) == 1
    doc = registry.version(DATASET, 1)
    assert doc["status"] == "champion" and doc["run_id"] == key.split("/")[-2]
    gates = _gates(doc)
    assert set(gates) == {"parity", "floors", "latency", "size"} and all(g["passed"] for g in gates.values())
    assert gates["floors"]["figure"]["metrics"]["roc_auc"]["floor"] == 0.6
    assert doc["gates"]["first_model"] is True and doc["gates"]["evaluated_against"] is None
    assert (
        doc["artifacts"]["model.onnx"]["version_id"] and len(doc["artifacts"]["model.onnx"]["sha256"]) == 64
    )
    assert doc["artifacts"]["manifest.json"]["key"] == key
    assert doc["lineage"]["data_hash"] == "0" * 64
    (entry,) = registry.audit(DATASET)
    assert entry["who"] == "evaluator" and entry["from_version"] is None and entry["to_version"] == 1
    (note,) = world.inbox()
    assert note["type"] == notify.MODEL_PROMOTED and note["to_version"] == 1 and note["by"] == "evaluator"


def test_better_candidate_is_promoted_after_scoring_both_on_the_same_rows(world):
    evaluate(world, publish(world, "stump"))
    evaluate(world, publish(world, "forest"))
    registry = world.registry
    assert registry.champion(DATASET) == 2
    doc = registry.version(DATASET, 2)
    figures = doc["gates"]["metrics"]
    # the champion was scored by onnxruntime on the candidate's holdout: its AUC there is the stump's
    assert figures["champion"]["roc_auc"] == pytest.approx(0.8649717514124294, abs=1e-12)
    assert figures["candidate"]["roc_auc"] == pytest.approx(0.9807909604519773, abs=1e-12)
    primary = _gates(doc)["primary_metric"]
    assert primary["passed"] and primary["figure"]["improvement"] > 0.1
    assert doc["gates"]["evaluated_against"] == 1 and doc["gates"]["holdout_rows"] == 89
    assert registry.version(DATASET, 1)["status"] == "retired"
    assert world.inbox()[-1]["from_version"] == 1


def test_worse_candidate_is_rejected_with_every_failed_gate_named(world):
    evaluate(world, publish(world, "forest"))
    outcome = evaluate(world, publish(world, "weak_logistic"))
    assert outcome["action"] == "rejected"
    doc = world.registry.version(DATASET, 2)
    assert doc["status"] == "rejected" and world.registry.champion(DATASET) == 1
    failed = {g["name"] for g in doc["gates"]["gates"] if not g["passed"]}
    assert failed == {"primary_metric", "guard_metrics"}
    assert "roc_auc" in doc["gates"]["reason"] and "log_loss" in doc["gates"]["reason"]
    assert doc["transitions"][-1]["by"] == "evaluator"
    assert [n["type"] for n in world.inbox()] == ["Model promoted", "Model version rejected"]


def test_manual_policy_leaves_a_passing_candidate_pending_approval(world):
    evaluate(world, publish(world, "forest"))
    world.contracts.put(contract_for(mode="manual"))
    outcome = evaluate(world, publish(world, "logistic"))
    assert outcome["action"] == "pending_approval"
    doc = world.registry.version(DATASET, 2)
    assert doc["status"] == "pending_approval" and doc["gates"]["passed"] is True
    assert world.registry.champion(DATASET) == 1
    last = world.inbox()[-1]
    assert last["type"] == "Model version awaiting approval" and last["champion"] == 1


def test_a_dataset_without_a_contract_fails_the_delivery(world):
    world.contracts.contracts.clear()
    with pytest.raises(NoContract):
        evaluate(world, publish(world, "stump"))
    assert world.registry.version(DATASET, 1)["status"] == "candidate"  # judged on the retry


# --- one manifest, one version, one decision -----------------------------------------------------------


def test_duplicate_manifest_events_register_and_judge_one_version(world):
    key = publish(world, "stump")
    outcomes = [evaluate(world, key) for _ in range(4)]
    assert [o["action"] for o in outcomes] == ["promoted", "duplicate", "duplicate", "duplicate"]
    assert outcomes[-1]["status"] == "champion"
    assert [v["version"] for v in world.registry.versions(DATASET)] == [1]
    assert len(world.registry.audit(DATASET)) == 1
    assert len(world.inbox()) == 1


def test_concurrent_deliveries_of_one_manifest_make_one_decision(world):
    key = publish(world, "stump")
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(3)

    def deliver() -> None:
        barrier.wait()
        results.append(evaluate(world, key))

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["action"] for r in results) == ["duplicate", "duplicate", "promoted"]
    assert [v["version"] for v in world.registry.versions(DATASET)] == [1]
    assert len(world.registry.audit(DATASET)) == 1
    doc = world.registry.version(DATASET, 1)
    assert [t["to"] for t in doc["transitions"]] == ["candidate", "approved", "champion"]
    assert world.notifier.types() == [notify.MODEL_PROMOTED]


def test_an_evaluation_that_crashed_before_its_promotion_is_finished_by_the_redelivery(world, monkeypatch):
    key = publish(world, "stump")

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the function timed out")

    monkeypatch.setattr(world.registry, "approve", crash)
    with pytest.raises(RuntimeError, match="timed out"):  # the invocation fails: the message returns
        evaluate(world, key)
    # The approval and the promotion are one change: nothing of it was recorded.
    assert world.registry.version(DATASET, 1)["status"] == "candidate"
    assert world.registry.champion(DATASET) is None and world.inbox() == []
    monkeypatch.undo()
    assert evaluate(world, key)["action"] == "promoted"
    assert world.registry.champion(DATASET) == 1
    transitions = world.registry.version(DATASET, 1)["transitions"]
    assert [t["to"] for t in transitions] == ["candidate", "approved", "champion"]


def test_a_version_the_evaluator_approved_but_never_promoted_is_finished_by_the_redelivery(world):
    """A record from before approvals were promotions: approved by the evaluator, not promoted."""
    key = publish(world, "stump")
    world.registry.register_version(DATASET, {"run_id": key.split("/")[-2]})
    world.registry.set_status(DATASET, 1, "approved", by="evaluator", reason="every gate passed")
    assert evaluate(world, key)["action"] == "promoted"
    assert world.registry.champion(DATASET) == 1
    transitions = world.registry.version(DATASET, 1)["transitions"]
    assert [t["to"] for t in transitions] == ["candidate", "approved", "champion"]


def test_a_version_approved_by_a_person_is_not_judged_again(world):
    key = publish(world, "stump")
    world.registry.register_version(DATASET, {"run_id": key.split("/")[-2]})
    world.registry.set_status(DATASET, 1, "approved", by="alice (approver)", reason="looked at it")
    assert evaluate(world, key) == {
        "model": DATASET,
        "version": 1,
        "run_id": key.split("/")[-2],
        "action": "duplicate",
        "status": "approved",
    }
    assert world.registry.champion(DATASET) is None


def test_a_champion_change_during_evaluation_is_judged_again(world, monkeypatch):
    evaluate(world, publish(world, "stump"))
    forest, logistic = publish(world, "forest"), publish(world, "logistic")
    evaluate(world, forest)  # v2 (forest) champion
    original = world.registry.champion
    calls = {"n": 0}

    def stale(model: str) -> int | None:
        # The evaluation of v3 reads the champion once before v2's promotion is visible.
        calls["n"] += 1
        return 1 if calls["n"] == 1 else original(model)

    monkeypatch.setattr(world.registry, "champion", stale)
    outcome = evaluate(world, logistic)
    assert outcome["action"] == "promoted" and outcome["from_version"] == 2
    doc = world.registry.version(DATASET, 3)
    assert doc["status"] == "champion" and doc["gates"]["evaluated_against"] == 2
    assert [e["to_version"] for e in world.registry.audit(DATASET)] == [1, 2, 3]


def test_a_version_waits_for_approval_only_against_the_current_champion(world, monkeypatch):
    """Manual mode: the champion changes between the evaluator's read and its decision; the version is
    judged again, and waits for an approval against the champion of now (never a stale one)."""
    evaluate(world, publish(world, "stump"))
    forest, logistic = publish(world, "forest"), publish(world, "logistic")
    evaluate(world, forest)  # v2 (forest) champion
    world.contracts.put(contract_for(mode="manual"))
    original = world.registry.champion
    calls = {"n": 0}

    def stale(model: str) -> int | None:
        calls["n"] += 1
        return 1 if calls["n"] == 1 else original(model)

    monkeypatch.setattr(world.registry, "champion", stale)
    outcome = evaluate(world, logistic)
    assert outcome["action"] == "pending_approval" and calls["n"] >= 2
    doc = world.registry.version(DATASET, 3)
    assert doc["status"] == "pending_approval" and doc["gates"]["evaluated_against"] == 2
    assert [t["to"] for t in doc["transitions"]] == ["candidate", "pending_approval"]


def test_under_a_rollout_policy_a_promotion_starts_a_rollout_with_the_approval_and_the_gates(world):
    world.contracts.put(contract_for(rollout={"strategy": "linear", "linear_percent": 50, "bake": "5m"}))
    first = evaluate(world, publish(world, "stump"))
    assert first["action"] == "promoted"  # the first model: nothing to roll out against
    outcome = evaluate(world, publish(world, "forest"))
    assert outcome["action"] == "rollout_started" and outcome["from_version"] == 1
    pointer = world.registry.rollout(DATASET)
    assert outcome["rollout"] == pointer and (pointer["candidate"], pointer["champion"]) == (2, 1)
    assert pointer["schedule"]["steps"] == [50.0, 100.0] and pointer["by"] == "evaluator"
    assert pointer["from_status"] == "candidate"
    doc = world.registry.version(DATASET, 2)
    assert doc["status"] == "rolling_out" and doc["gates"]["decision"] == "promote"
    assert doc["gates"]["evaluated_against"] == 1
    assert [t["to"] for t in doc["transitions"]] == ["candidate", "approved", "rolling_out"]
    assert world.registry.champion(DATASET) == 1 and len(world.registry.audit(DATASET)) == 1
    note = world.inbox()[-1]
    assert note["type"] == notify.MODEL_ROLLOUT_STARTED and note["version"] == 2 and note["champion"] == 1
    # While it runs, a better candidate cannot be promoted nor rolled out: it waits for a person.
    third = evaluate(world, publish(world, "logistic"))
    assert third["action"] == "pending_approval"
    assert third["reason"].endswith(
        "not promoted now: a rollout of v2 is in progress (breast_cancer rollout 1, active); abort it first"
    )
    assert world.registry.version(DATASET, 3)["status"] == "pending_approval"
    assert world.inbox()[-1]["type"] == notify.APPROVAL_NEEDED


def test_a_champion_that_keeps_changing_fails_the_delivery_for_a_retry(world, monkeypatch):
    evaluate(world, publish(world, "stump"))
    key = publish(world, "forest")
    monkeypatch.setattr(world.registry, "champion", lambda model: None)  # always a stale "none"
    with pytest.raises(RegistryError, match="kept changing"):
        evaluate(world, key)
    assert world.registry.version(DATASET, 2)["status"] == "candidate"  # the retry judges it afresh


# --- integrity -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("artifact", ["model.onnx", "holdout.csv"])
def test_tampered_artifact_is_rejected_and_never_promoted(world, artifact):
    outcome = evaluate(world, publish(world, "stump", tamper=artifact))
    assert outcome["action"] == "rejected" and "gates" not in outcome
    doc = world.registry.version(DATASET, 1)
    assert doc["status"] == "rejected" and world.registry.champion(DATASET) is None
    (gate,) = doc["gates"]["gates"]
    assert gate["name"] == "integrity" and artifact in gate["reason"] and "sha256" in gate["reason"]
    assert world.inbox()[-1]["type"] == notify.VERSION_REJECTED


def test_a_manifest_pointing_outside_its_prefix_is_rejected(world):
    key = publish(world, "stump")
    manifest = json.loads(world.artifacts.read(BUCKET, key).data)
    for entry in manifest["artifacts"]:
        if entry["name"] == "model.onnx":
            entry["key"] = "models/other/champion/model.onnx"
    rogue = f"models/{DATASET}/candidates/rogue-1/manifest.json"
    world.artifacts.put(BUCKET, rogue, json.dumps({**manifest, "run_id": "rogue-1"}).encode())
    evaluate(world, rogue)
    doc = world.registry.version(DATASET, 1)
    assert doc["status"] == "rejected" and "outside the candidate's prefix" in doc["gates"]["reason"]


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda m: b"{not json", "manifest.json is not valid JSON"),
        (lambda m: b"[1, 2]", "not a JSON object"),
        (lambda m: {**m, "run_id": "someone-else"}, "names run 'someone-else'"),
        (lambda m: {**m, "artifacts": "all of them"}, "has no artifacts list"),
        (
            lambda m: {**m, "artifacts": [a for a in m["artifacts"] if a["name"] != "parity.json"]},
            "does not list parity.json",
        ),
        (lambda m: {**m, "artifacts": [{**a, "sha256": None} for a in m["artifacts"]]}, "gives no sha256"),
    ],
)
def test_an_unusable_manifest_is_registered_and_rejected_naming_the_problem(world, change, fragment):
    key = publish(world, "stump")
    manifest = json.loads(world.artifacts.read(BUCKET, key).data)
    changed = change(manifest)
    world.artifacts.put(BUCKET, key, changed if isinstance(changed, bytes) else json.dumps(changed).encode())
    outcome = evaluate(world, key)
    assert outcome["action"] == "rejected" and fragment in outcome["reason"]
    doc = world.registry.version(DATASET, 1)
    assert doc["status"] == "rejected" and fragment in doc["gates"]["reason"]
    assert evaluate(world, key)["action"] == "duplicate"  # a redelivery changes nothing


def test_an_artifact_missing_from_the_bucket_is_named(world):
    key = publish(world, "stump")
    manifest = json.loads(world.artifacts.read(BUCKET, key).data)
    manifest["artifacts"].append({"name": "extra.bin", "key": key.replace("manifest.json", "extra.bin")})
    world.artifacts.put(BUCKET, key, json.dumps(manifest).encode())
    assert "extra.bin is listed in the manifest but missing" in evaluate(world, key)["reason"]


def test_the_manifest_version_notified_is_the_one_judged(world):
    key = publish(world, "stump")
    first = world.artifacts.read(BUCKET, key)
    world.artifacts.put(BUCKET, key, b"overwritten after the notification")
    outcome = evaluate_manifest(world.ports, BUCKET, key, first.version_id)
    assert outcome["action"] == "promoted"
    assert world.registry.version(DATASET, 1)["artifacts"]["manifest.json"]["version_id"] == first.version_id


def test_a_key_that_is_not_a_manifest_or_a_missing_manifest_raises(world):
    with pytest.raises(ValueError, match="not a candidate manifest key"):
        evaluate_manifest(world.ports, BUCKET, f"models/{DATASET}/candidates/r1/model.onnx")
    with pytest.raises(RegistryError, match="missing"):
        evaluate_manifest(world.ports, BUCKET, f"models/{DATASET}/candidates/r1/manifest.json")
    assert world.registry.versions(DATASET) == []


# --- fair comparisons and sticky decisions (issue 14) ---------------------------------------------------
#
# Generated store sales (mlops.datasets.sales_rows): a linear regression of units on price, ads, footfall
# and region. Uploads are named u0, u1...; each candidate is trained by the job's own code on a snapshot
# of some of them, with the lineage a run records.

SALES = "store_sales"
STUMP = {"family": "random_forest", "params": {"n_estimators": 1, "max_depth": 1}}


def _sales_uploads(n: int, corrupt: int | None = None, rows: int = 240) -> dict[str, bytes]:
    """Uploads u0..u(n-1) of ``rows`` rows each; ``corrupt``: that one's ads scaled by three (in contract)."""
    return {
        f"u{i}": to_csv(*sales_rows(rows, start=rows * i, seed=i, ads_factor=3.0 if i == corrupt else 1.0))
        for i in range(n)
    }


def _candidate(world: World, doc: dict[str, Any], uploads: dict[str, bytes]) -> dict[str, Any]:
    """Store ``doc`` as the dataset's contract, train on ``uploads``, publish, evaluate: the outcome."""
    contract = Contract.parse(doc)
    world.contracts.put(contract)
    return evaluate(world, publish_built(world, *build_from_uploads(doc, uploads, contract)))


def _without(doc: dict[str, Any], column: str, **changes: Any) -> dict[str, Any]:
    """``doc`` with one column changed (``"feature": False`` removes it from the model)."""
    columns = [{**c, **changes} if c["name"] == column else c for c in doc["columns"]]
    return {**doc, "columns": columns, "version": doc["version"] + 1}


@pytest.mark.parametrize("approval", [True, False])
def test_a_better_model_without_one_feature_is_compared_on_the_same_rows_and_never_undefined(world, approval):
    """Issue 14, failure 1: with ``"feature": false`` on one column, the better retrain used to be
    rejected for good as "roc_auc is undefined" because the champion could not score a holdout
    without that column. The holdout carries every column now: the champion scores the same rows,
    and the schema change is the stated reason (approval, or promotion when the policy allows it)."""
    uploads = _sales_uploads(2)
    policy = {"require_approval_on_breaking_schema": approval}
    assert _candidate(world, sales_contract(STUMP, **policy), uploads)["action"] == "promoted"
    outcome = _candidate(world, _without(sales_contract(**policy), "region", feature=False), uploads)
    doc = world.registry.version(SALES, 2)
    gates, reason = _gates(doc), doc["gates"]["reason"]
    assert "undefined" not in reason and "feature region removed" in reason
    primary = gates["primary_metric"]
    assert primary["passed"] and primary["figure"]["champion"] > primary["figure"]["candidate"]  # rmse
    assert doc["gates"]["comparison"]["rows"] == doc["gates"]["holdout_rows"]  # the champion scored all
    if approval:
        assert outcome["action"] == "pending_approval" and doc["status"] == "pending_approval"
    else:
        assert outcome["action"] == "promoted" and world.registry.champion(SALES) == 2


def test_a_retyped_feature_is_compared_on_the_same_rows_and_named(world):
    """footfall integer -> float: the holdout writes integral numbers as the integer grammar reads
    them, so the champion still scores every row, and the type change is the reason to wait."""
    uploads = _sales_uploads(2)
    assert _candidate(world, sales_contract(STUMP), uploads)["action"] == "promoted"
    outcome = _candidate(world, _without(sales_contract(), "footfall", type="float"), uploads)
    doc = world.registry.version(SALES, 2)
    assert outcome["action"] == "pending_approval"
    assert "feature footfall changed type from integer to float" in doc["gates"]["reason"]
    assert "undefined" not in doc["gates"]["reason"] and _gates(doc)["primary_metric"]["passed"]


def test_an_in_contract_corrupted_upload_does_not_get_a_model_worse_on_earlier_rows_promoted(world):
    """Issue 14, failure 2: a clean champion; then an upload with ads scaled by three (within the
    contract). The champion scores its rows badly, so on the whole holdout the candidate trained
    on it looks better, and used to be promoted, though it is worse on the rows of the uploads the
    champion was judged on. The holdout is reported in slices, and that is not auto-promoted; a
    person may still approve it, and a rollback of it sticks: the rebuild is rejected, naming it."""
    from chalicelib.registry.service import approve, rollback

    doc = sales_contract()
    assert _candidate(world, doc, _sales_uploads(2))["action"] == "promoted"
    corrupted = _sales_uploads(3, corrupt=2)
    outcome = _candidate(world, doc, corrupted)
    assert outcome["action"] == "pending_approval" and world.registry.champion(SALES) == 1
    gates = world.registry.version(SALES, 2)["gates"]
    metrics, slices = gates["metrics"], gates["slices"]
    assert metrics["candidate"]["rmse"] < metrics["champion"]["rmse"]  # better on all rows...
    earlier, new = slices["earlier"], slices["new"]
    assert {u["upload"] for u in earlier["uploads"]} == {"u0", "u1"}
    assert {u["upload"] for u in new["uploads"]} == {"u2"}
    assert earlier["rows"] + new["rows"] == gates["holdout_rows"] and earlier["rows"] > 50
    # ...because of the new slice alone: worse on the rows the champion was judged on
    assert earlier["metrics"]["candidate"]["rmse"] > earlier["metrics"]["champion"]["rmse"]
    assert new["metrics"]["candidate"]["rmse"] < new["metrics"]["champion"]["rmse"]
    assert "earlier_slice" in gates["reason"] and "u2" in gates["reason"]
    assert {u["upload"] for u in gates["evaluated_on"]} == {"u0", "u1", "u2"}

    # A person approves it all the same, another rolls it back; the next retrain rebuilds it.
    approve(world.registry, world.notifier, SALES, 2, "alice (approver)", "the ads team says it is fine")
    rollback(world.registry, world.notifier, SALES, "ops (admin)", "units forecasts went wrong")
    assert world.registry.champion(SALES) == 1
    again = _candidate(world, doc, corrupted)
    assert again["action"] == "rejected" and world.registry.champion(SALES) == 1
    rolled_back_at = world.registry.audit(SALES)[-1]["at"]
    reason = world.registry.version(SALES, 3)["gates"]["reason"]
    assert "v2" in reason and "rolled back" in reason and "ops (admin)" in reason and rolled_back_at in reason


def test_a_rolled_back_model_rebuilt_from_the_same_data_and_settings_is_not_promoted_again(world):
    """Issue 14, failure 2's second half: after a rollback, the next retrain on the same snapshot
    with the same settings rebuilt the same model, and it was promoted again."""
    from chalicelib.registry.service import rollback

    uploads = _sales_uploads(2)
    assert _candidate(world, sales_contract(STUMP), uploads)["action"] == "promoted"
    assert _candidate(world, sales_contract(), uploads)["action"] == "promoted"  # clearly better
    rollback(world.registry, world.notifier, SALES, "ops (admin)", "distrusted by the sales team")
    outcome = _candidate(world, sales_contract(), uploads)
    assert outcome["action"] == "rejected" and world.registry.champion(SALES) == 1
    doc = world.registry.version(SALES, 3)
    (gate,) = [g for g in doc["gates"]["gates"] if not g["passed"]]
    assert gate["name"] == "earlier_decision" and gate["figure"]["version"] == 2
    assert gate["figure"]["decision"] == "rolled back" and gate["figure"]["by"] == "ops (admin)"
    assert "distrusted by the sales team" in doc["gates"]["reason"]
    # New data is a new snapshot: judged on its merits again.
    assert _candidate(world, sales_contract(), _sales_uploads(3))["action"] == "promoted"


def test_a_version_a_person_rejected_is_not_rebuilt_into_a_promotion(world):
    from chalicelib.registry.service import reject

    uploads = _sales_uploads(2)
    assert _candidate(world, sales_contract(STUMP), uploads)["action"] == "promoted"
    assert _candidate(world, sales_contract(mode="manual"), uploads)["action"] == "pending_approval"
    reject(world.registry, world.notifier, SALES, 2, "alice (approver)", "region codes were wrong")
    outcome = _candidate(world, sales_contract(), uploads)  # auto mode, same data and settings
    assert outcome["action"] == "rejected"
    reason = world.registry.version(SALES, 3)["gates"]["reason"]
    assert "v2" in reason and "rejected" in reason and "alice (approver)" in reason


def test_the_gates_own_rejection_is_not_sticky(world):
    """A rebuild of a candidate the gates rejected is judged afresh (the champion may have changed)."""
    uploads = _sales_uploads(2)
    assert _candidate(world, sales_contract(), uploads)["action"] == "promoted"
    assert _candidate(world, sales_contract(STUMP), uploads)["action"] == "rejected"
    assert _candidate(world, sales_contract(STUMP), uploads)["action"] == "rejected"
    gates = _gates(world.registry.version(SALES, 3))
    assert "earlier_decision" not in gates and not gates["primary_metric"]["passed"]


def test_rows_the_champion_cannot_read_are_left_out_for_both_models_and_counted(world):
    """footfall retyped to float, and the new data holds fractions: the champion (integers) cannot
    read those rows; both models are compared on the others, the count and the reason on record."""
    uploads = _sales_uploads(2)
    assert _candidate(world, sales_contract(STUMP), uploads)["action"] == "promoted"
    header, rows = sales_rows(240, start=480, seed=9)
    halves = [[*r[:3], f"{r[3]}.5" if i % 4 == 0 else r[3], *r[4:]] for i, r in enumerate(rows)]
    retyped = _without(sales_contract(require_approval_on_breaking_schema=False), "footfall", type="float")
    outcome = _candidate(world, retyped, {**uploads, "u2": to_csv(header, halves)})
    gates = world.registry.version(SALES, 2)["gates"]
    comparison = gates["comparison"]
    assert 0 < comparison["champion_cannot_score"] < comparison["holdout_rows"]
    assert comparison["rows"] + comparison["champion_cannot_score"] == gates["holdout_rows"]
    assert "footfall" in comparison["problem"] and "not an integer" in comparison["problem"]
    assert any("cannot score" in note for note in gates["notes"])
    assert outcome["action"] == "promoted" and "feature footfall changed type" in gates["reason"]


def test_a_champion_that_can_score_no_row_waits_for_a_person_with_the_reason(world):
    """ads is pii in the new contract: the holdout cannot carry it, the champion needs it."""
    uploads = _sales_uploads(2)
    assert _candidate(world, sales_contract(STUMP), uploads)["action"] == "promoted"
    outcome = _candidate(world, _without(sales_contract(), "ads", classification="pii"), uploads)
    doc = world.registry.version(SALES, 2)
    assert outcome["action"] == "pending_approval" and doc["gates"]["comparison"]["rows"] == 0
    reason = doc["gates"]["reason"]
    assert "comparison:" in reason and "needs column(s) ads" in reason and "undefined" not in reason
    assert "primary_metric" not in _gates(doc)


# --- revoked uploads (issue 14, "What to build" 2) ------------------------------------------------------


def test_a_candidate_trained_on_a_revoked_upload_is_tainted_and_rejected_unscored(world):
    """A run that started before the revocation (its snapshot still held the upload)."""
    uploads = _sales_uploads(2)
    world.revocations.entries["u1"] = Revoked()
    outcome = _candidate(world, sales_contract(STUMP), uploads)
    doc = world.registry.version(SALES, 1)
    assert outcome["action"] == "rejected" and doc["status"] == "rejected"
    assert doc["tainted"] == {
        "u1": {"trained": True, "evaluated": False, "by": "ops (admin)", "reason": "ads exported in cents",
               "at": "2026-11-30T13:00:00+00:00"}
    }  # fmt: skip
    assert doc["gates"]["reason"] == (
        "revoked_uploads: tainted: trained on upload u1, revoked by ops (admin): ads exported in cents"
    )
    assert "metrics" not in doc["gates"] and world.registry.champion(SALES) is None


def test_a_rebuild_of_the_champion_is_rejected_naming_it(world):
    """The retrain after a revocation can rebuild the fallback champion exactly (same snapshot, same
    settings): nothing to promote, said so instead of a tie on the metrics."""
    uploads = _sales_uploads(2)
    assert _candidate(world, sales_contract(STUMP), uploads)["action"] == "promoted"
    outcome = _candidate(world, sales_contract(STUMP), uploads)
    doc = world.registry.version(SALES, 2)
    assert outcome["action"] == "rejected" and world.registry.champion(SALES) == 1
    assert doc["fingerprint"] == world.registry.version(SALES, 1)["fingerprint"]
    assert doc["gates"]["reason"] == (
        "same_as_champion: the same data snapshot and training settings built the champion v1: this "
        "rebuild is the same model, so there is nothing to promote"
    )


def test_a_tainted_champion_is_no_baseline_the_candidate_meets_the_floors_and_replaces_it(world):
    uploads = _sales_uploads(3, corrupt=2)
    assert _candidate(world, sales_contract(STUMP), uploads)["action"] == "promoted"
    world.registry.taint(
        SALES, 1, "u2", {"trained": True, "evaluated": True, "by": "ops (admin)", "reason": "cents"}
    )
    clean = {k: v for k, v in uploads.items() if k != "u2"}
    outcome = _candidate(world, sales_contract({"family": "linear_regression"}), clean)
    doc = world.registry.version(SALES, 2)
    assert outcome["action"] == "promoted" and world.registry.champion(SALES) == 2
    assert doc["gates"]["metrics"]["champion"] is None and doc["gates"]["evaluated_against"] == 1
    assert doc["gates"]["tainted_champion"].startswith(
        "the champion v1 is tainted: trained and evaluated on upload u2"
    )
    assert world.registry.version(SALES, 1)["status"] == "retired"


def test_a_candidate_tainted_while_it_is_judged_never_waits_for_an_approval(world):
    """A revocation taints the candidate while the evaluator scores it and looks for waiting versions
    before this one waits: the evaluator sees the taint after sending it to wait, and rejects it."""
    uploads = _sales_uploads(2)
    assert _candidate(world, sales_contract(STUMP), uploads)["action"] == "promoted"
    registry = world.registry
    await_approval = registry.await_approval

    def revoked_meanwhile(model: str, version: int, *args: Any, **kwargs: Any) -> dict[str, Any]:
        detail = {"trained": True, "evaluated": True, "by": "ops (admin)", "reason": "cents"}
        registry.taint(model, version, "u1", detail)
        return await_approval(model, version, *args, **kwargs)

    registry.await_approval = revoked_meanwhile  # type: ignore[method-assign]
    manual = sales_contract({"family": "linear_regression"}, mode="manual")
    outcome = _candidate(world, manual, uploads)
    doc = registry.version(SALES, 2)
    assert outcome["action"] == "rejected" and doc["status"] == "rejected"
    assert doc["gates"]["reason"].startswith("revoked_uploads: tainted: trained and evaluated on upload u1")
    assert [t["to"] for t in doc["transitions"]] == ["candidate", "pending_approval", "rejected"]
