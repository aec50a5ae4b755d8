"""Revoking an upload, on in-memory adapters: the ingest stage and the kickoff (as in the row
identity tests) with a registry whose versions name the uploads they were trained and evaluated on.
The upload leaves future snapshots and row comparisons; the versions it reached are tainted; a
tainted champion falls back and a retrain without the upload starts, per the contract's policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib import notify
from chalicelib.adapters.memory.notifier import MemoryNotifier
from chalicelib.adapters.memory.registry import MemoryRegistry
from chalicelib.ingest.exceptions import NotRevocable, UploadNotFound
from chalicelib.revocation import service
from chalicelib.revocation.service import AlreadyRevoked, RevocationPorts
from chalicelib.validation import Contract
from mlops.datasets import breast_cancer_contract, breast_cancer_rows, to_csv
from tests.service.test_row_identity import DATASET, NOW, Pipeline

ADMIN = "ops (admin)"
LATER = NOW + timedelta(hours=1)


@pytest.fixture(scope="module")
def days() -> tuple[list[str], list[list[str]]]:
    return breast_cancer_rows()


class Revocable(Pipeline):
    def __init__(self, **revocation: Any) -> None:
        super().__init__()
        if revocation:
            doc = breast_cancer_contract()
            doc["promotion"] = {**doc.get("promotion", {}), "revocation": revocation}
            self.contracts.put(Contract.parse(doc))
        self.registry = MemoryRegistry()
        self.notifier = MemoryNotifier()
        self.now = NOW  # the revocation comes an hour after the uploads (``uploads``)
        self.training = type(self.training)(
            self.runs,
            self.contracts,
            self.snapshots,
            self.launcher,
            lambda: self.now,
            revocations=self.ledger,
        )
        self.revocation = RevocationPorts(
            self.ledger, self.registry, self.contracts, self.notifier, self.training, lambda: self.now
        )

    def version(self, trained_on: list[str], evaluated_on: list[str], status: str = "candidate") -> int:
        """A registered version trained on ``trained_on`` and judged on ``evaluated_on``; promoted
        (champion) or sent to wait, as ``status`` says."""
        run = f"run-{len(self.registry.versions(DATASET)) + 1}"
        version, _ = self.registry.register_version(DATASET, {"run_id": run, "trained_on": trained_on})
        gates = {"evaluated_on": [{"upload": u, "rows": 10} for u in evaluated_on]}
        if status == "champion":
            self.registry.approve(
                DATASET, version, "evaluator", "better", self.registry.champion(DATASET), "candidate", gates
            )
        elif status == "pending_approval":
            self.registry.await_approval(
                DATASET, version, "evaluator", "manual", gates, "candidate", self.registry.champion(DATASET)
            )
        else:
            self.registry.update_gates(DATASET, version, gates, "candidate")
        return version

    def uploads(self, rows: list[list[str]], header: list[str], n: int) -> list[str]:
        ids = []
        for day in range(n):
            entry, _ = self.upload_and_kick(
                f"incoming/{DATASET}/day{day}.csv", to_csv(header, rows[100 * day : 100 * day + 100])
            )
            ids.append(entry.upload_id)
        self.finish_runs()
        self.now = LATER
        return ids


def test_the_lineage_query_lists_every_version_an_upload_reached_and_how(days):
    world = Revocable()
    header, rows = days
    u1, u2, u3 = world.uploads(rows, header, 3)
    world.version([u1, u2], [u1, u2], "champion")
    world.version([u1, u2, u3], [u2, u3], "pending_approval")
    world.version([u1], [u1])
    doc = service.models_of_upload(world.ledger, world.registry, u3)
    assert doc["dataset"] == DATASET and doc["model"] == DATASET and doc["champion"] == 1
    assert doc["revoked"] is None and doc["status"] == "valid"
    assert [
        (v["version"], v["status"], v["trained"], v["evaluated"], v["tainted"]) for v in doc["versions"]
    ] == [(2, "pending_approval", True, True, None)]
    first = service.models_of_upload(world.ledger, world.registry, u1)["versions"]
    assert [(v["version"], v["champion"], v["trained"], v["evaluated"]) for v in first] == [
        (1, True, True, True), (2, False, True, False), (3, False, True, True)
    ]  # fmt: skip
    with pytest.raises(UploadNotFound):
        service.models_of_upload(world.ledger, world.registry, "0" * 24)


def test_revoking_taints_what_it_reached_falls_back_and_retrains_without_it(days):
    world = Revocable()
    header, rows = days
    u1, u2, u3, u4 = world.uploads(rows, header, 4)
    assert len(world.launcher.launched) == 1  # 300 new rows after day 3: one run so far
    world.version([u1, u2], [u1, u2], "champion")  # v1
    world.version([u1, u2, u3], [u3], "champion")  # v2: v1 retired
    world.version([u1, u2, u3, u4], [u3, u4], "champion")  # v3: the corrupted day u4
    world.version([u1, u2, u3, u4], [u4], "pending_approval")  # v4 waits
    outcome = service.revoke(world.revocation, u4, ADMIN, "ads scaled by three")

    assert outcome["tainted"] == [3, 4] and outcome["rejected"] == [4]
    v3, v4 = world.registry.version(DATASET, 3), world.registry.version(DATASET, 4)
    assert v3["tainted"][u4] == {
        "trained": True, "evaluated": True, "by": ADMIN, "reason": "ads scaled by three", "at": LATER.isoformat()
    }  # fmt: skip
    assert v4["status"] == "rejected" and v4["transitions"][-1]["by"] == ADMIN
    assert f"upload {u4} was revoked: ads scaled by three" == v4["transitions"][-1]["reason"]
    # The champion v3 was tainted: v2 (the newest former champion, untainted) serves again.
    champion = outcome["champion"]
    assert champion["version"] == 3 and champion["tainted"] and champion["fallback"]["to_version"] == 2
    assert world.registry.champion(DATASET) == 2
    entry = world.registry.audit(DATASET)[-1]
    assert (entry["action"], entry["from_version"], entry["to_version"], entry["who"]) == (
        "rollback",
        3,
        2,
        ADMIN,
    )
    assert entry["reason"].startswith(
        f"fallback: v3 is tainted (upload {u4} revoked by {ADMIN}: ads scaled by three)"
    )
    # A retrain without u4.
    assert champion["retrain"]["action"] == "launch" and len(world.launcher.launched) == 2
    run = world.runs.get_run(champion["retrain"]["run_id"])
    manifest = world.snapshots.get_manifest(run["data_manifest_key"])
    assert {o["upload_id"] for o in manifest["objects"]} == {u1, u2, u3}
    assert f"upload {u4} revoked by {ADMIN}: ads scaled by three" in " ".join(run["reasons"])
    # The ledger records it; the notifications say it.
    entry4 = world.ledger.get(u4)
    assert (entry4.revoked_by, entry4.revoked_reason, entry4.revoked_at) == (
        ADMIN,
        "ads scaled by three",
        LATER.isoformat(),
    )
    types = world.notifier.types()
    assert notify.CHAMPION_TAINTED in types and types[-1] == notify.UPLOAD_REVOKED
    rolled_back = {
        "model": DATASET,
        "from_version": 3,
        "to_version": 2,
        "by": ADMIN,
        "reason": entry["reason"],
    }
    assert (notify.MODEL_ROLLED_BACK, rolled_back) in world.notifier.messages


def test_the_fallback_skips_tainted_former_champions_by_a_promotion(days):
    world = Revocable()
    header, rows = days
    u1, u2, u3 = world.uploads(rows, header, 3)
    world.version([u1], [u1], "champion")  # v1
    world.version([u1, u2], [u2], "champion")  # v2
    world.version([u1, u2, u3], [u3], "champion")  # v3
    champion = service.revoke(world.revocation, u2, ADMIN, "wrong site")["champion"]
    assert champion["fallback"]["to_version"] == 1 and champion["fallback"]["action"] == "promote"
    assert world.registry.champion(DATASET) == 1
    assert world.registry.audit(DATASET)[-1]["from_version"] == 3


def test_a_repeat_is_a_conflict_that_changes_nothing_more_but_finishes_the_taints(days):
    world = Revocable()
    header, rows = days
    u1, u2 = world.uploads(rows, header, 2)
    world.version([u1, u2], [u2], "champion")
    service.revoke(world.revocation, u2, ADMIN, "bad")
    world.version([u1, u2], [u2])  # v2: registered after the revocation (a run that started before)
    messages, launched = len(world.notifier.messages), len(world.launcher.launched)
    with pytest.raises(
        AlreadyRevoked, match=f"upload {u2} was revoked already, by ops \\(admin\\) at .*: bad"
    ):
        service.revoke(world.revocation, u2, "bob (admin)", "again")
    assert (
        world.registry.version(DATASET, 2)["tainted"][u2]["by"] == ADMIN
    )  # marked, the first decision's words
    assert len(world.notifier.messages) == messages and len(world.launcher.launched) == launched


def test_an_upload_that_never_reached_training_cannot_be_revoked(days):
    world = Revocable()
    header, rows = days
    world.uploads(rows, header, 1)  # a valid day first
    bad = world.upload(f"incoming/{DATASET}/broken.csv", b"not,a,table\n1\n")
    assert bad is not None and bad.status == "invalid"
    with pytest.raises(NotRevocable, match="is invalid: only a valid upload reaches training data"):
        service.revoke(world.revocation, bad.upload_id, ADMIN, "bad")
    with pytest.raises(UploadNotFound):
        service.revoke(world.revocation, "0" * 24, ADMIN, "bad")
    assert world.ledger.revoked(DATASET) == frozenset()


def test_the_policy_can_keep_the_tainted_champion_out_without_fallback_or_retrain(days):
    world = Revocable(fallback=False, retrain=False)
    header, rows = days
    u1, u2 = world.uploads(rows, header, 2)
    world.version([u1], [u1], "champion")
    world.version([u1, u2], [u2], "champion")
    launched = len(world.launcher.launched)
    champion = service.revoke(world.revocation, u2, ADMIN, "consent withdrawn")["champion"]
    assert champion["tainted"] and champion["fallback"] is None and champion["retrain"] is None
    assert world.registry.champion(DATASET) == 2 and len(world.launcher.launched) == launched


def test_without_an_untainted_former_champion_the_model_waits_for_a_new_one(days):
    world = Revocable()
    header, rows = days
    u1, u2 = world.uploads(rows, header, 2)
    world.version([u1, u2], [u2], "champion")
    world.version([u1, u2], [u2], "champion")
    champion = service.revoke(world.revocation, u1, ADMIN, "wrong site")["champion"]
    assert champion["fallback"]["to_version"] is None
    assert "no former champion of breast_cancer is untainted" in champion["fallback"]["note"]
    assert world.registry.champion(DATASET) == 2 and champion["retrain"]["action"] == "launch"


def test_a_revoked_upload_leaves_row_identity_so_a_corrected_reupload_is_new_data(days):
    world = Revocable()
    header, rows = days
    (u1,) = world.uploads(rows, header, 1)
    service.revoke(world.revocation, u1, ADMIN, "wrong export")
    again = world.upload(f"incoming/{DATASET}/day0-fixed.csv", to_csv(header, rows[:100][::-1]))
    assert again is not None and again.status == "valid"
    assert (again.new_rows, again.repeated_rows) == (100, 0)
    # The same bytes as the revoked upload: a duplicate, and the reason says its rows stay out.
    same = world.upload(f"incoming/{DATASET}/day0-copy.csv", to_csv(header, rows[:100]))
    assert same is not None and same.status == "duplicate" and same.duplicate_of == u1
    assert "which was revoked: these rows stay out of training" in str(same.problem)


def _rolling_out(world: Revocable, version: int) -> None:
    """Start a rollout of ``version`` (pending approval) against the champion."""
    from chalicelib.registry import rollout

    new, event = rollout.start(
        DATASET, 1, version, int(world.registry.champion(DATASET) or 0), rollout.DEFAULT_SCHEDULE,
        rollout.Guards(), LATER.isoformat(), "alice (approver)", "canary", "pending_approval",
    )  # fmt: skip
    world.registry.start_rollout(new, event, "pending_approval")


def test_a_revocation_that_taints_a_rollouts_candidate_aborts_it_and_rejects_the_candidate(days):
    world = Revocable()
    header, rows = days
    u1, u2 = world.uploads(rows, header, 2)
    world.version([u1], [u1], "champion")  # v1
    world.version([u1, u2], [u2], "pending_approval")  # v2, rolled out
    _rolling_out(world, 2)
    outcome = service.revoke(world.revocation, u2, ADMIN, "wrong site")
    why = f"upload {u2} was revoked by {ADMIN}: wrong site; it taints v2 (the candidate)"
    assert outcome["rollout"] == {"rollout": f"{DATASET}/r1", "version": 2, "reason": why}
    pointer = world.registry.rollout(DATASET)
    assert (pointer["status"], pointer["end_reason"], pointer["share"]) == ("aborted", why, 0.0)
    assert world.registry.rollout_events(DATASET)[-1]["by"] == ADMIN
    # Back to waiting, then rejected as any tainted waiting version; the champion stays.
    assert outcome["rejected"] == [2] and world.registry.version(DATASET, 2)["status"] == "rejected"
    assert world.registry.champion(DATASET) == 1 and not outcome["champion"]["tainted"]
    assert notify.MODEL_ROLLOUT_ABORTED in world.notifier.types()


def test_a_revocation_that_taints_the_champion_of_a_rollout_aborts_it_then_falls_back(days):
    world = Revocable()
    header, rows = days
    u1, u2, u3 = world.uploads(rows, header, 3)
    world.version([u1], [u1], "champion")  # v1
    world.version([u1, u2], [u2], "champion")  # v2, tainted by u2
    world.version([u1, u3], [u3], "pending_approval")  # v3, rolled out, untainted
    _rolling_out(world, 3)
    outcome = service.revoke(world.revocation, u2, ADMIN, "wrong site")
    assert outcome["rollout"]["reason"].endswith("it taints v2 (the champion)")
    assert world.registry.rollout(DATASET)["status"] == "aborted"
    # The rollout no longer blocks the fallback: v1 serves again (v3 was judged against v2: superseded).
    assert outcome["champion"]["fallback"]["to_version"] == 1 and world.registry.champion(DATASET) == 1
    assert world.registry.version(DATASET, 3)["status"] == "superseded"


def test_a_revocation_that_reaches_neither_side_of_a_rollout_leaves_it_running(days):
    world = Revocable()
    header, rows = days
    u1, u2, u3 = world.uploads(rows, header, 3)
    world.version([u1], [u1], "champion")  # v1
    world.version([u1, u2], [u2], "pending_approval")  # v2, rolled out
    world.version([u1, u3], [u3], "pending_approval")  # v3, waiting
    _rolling_out(world, 2)
    outcome = service.revoke(world.revocation, u3, ADMIN, "wrong site")
    assert outcome["rollout"] is None and outcome["rejected"] == [3]
    assert world.registry.rollout(DATASET)["status"] == "active"
