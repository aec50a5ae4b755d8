"""/predict during a rollout, at the service: the routing key picks the version deterministically, the
answer names it and the arm, the candidate's answers are scored by the champion too (role shadow),
and no request fails because of the candidate (its failures are captured, the champion answers).

Real models (the training job's code, onnxruntime): v1 a small forest (the champion), v2 a logistic
regression (the candidate); the registry reader is a fake serving their records and a rollout
pointer; capture in memory."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.adapters.memory.artifacts import MemoryArtifacts
from chalicelib.adapters.memory.capture import MemoryCapture
from chalicelib.adapters.memory.contracts import MemoryContractStore
from chalicelib.capture import records as rec
from chalicelib.capture.service import Capturer
from chalicelib.http import BadRequest
from chalicelib.registry import rollout as ro
from chalicelib.serving import predict, routing
from chalicelib.serving.requests import PredictRequest
from chalicelib.serving.schema import InvalidInput
from tests.rollout_support import Versions, pointer, stored_version
from tests.support import DATASET, contract_for, holdout_records

ROLLOUT_ID = f"{DATASET}/r1"


def key_for(arm: str, share: float = 10.0, rollout_id: str = ROLLOUT_ID, start: int = 0) -> str:
    """The first routing key ``user-<i>`` (i >= start) that the split sends to ``arm``."""
    i = start
    while routing.to_candidate(rollout_id, share, f"user-{i}") != (arm == "candidate"):
        i += 1
    return f"user-{i}"


class World:
    def __init__(self, share: float = 10.0, step: int = 0) -> None:
        self.artifacts = MemoryArtifacts()
        self.registry = Versions(self.artifacts)
        self.registry.add(stored_version(self.artifacts, 1, "forest", status="champion"))
        self.registry.add(stored_version(self.artifacts, 2, "logistic", status="rolling_out"))
        self.registry.champion_version = 1
        self.registry.pointer = pointer(2, 1, percent=share, step=step)
        self.capture = MemoryCapture()
        self.now = [0.0]
        self.predictor = self.container()

    def container(self) -> predict.Predictor:
        """A new container's predictor on the same stores (nothing cached)."""
        contracts = MemoryContractStore()
        contracts.put(contract_for("forest"))
        capturer = Capturer(self.capture, contracts, self.capture, clock=lambda: self.now[0])
        return predict.Predictor(
            self.registry, self.artifacts, clock=lambda: self.now[0], ttl_s=10.0, capture=capturer
        )

    def ask(self, request_id: str, key: str | None = None, n: int = 3, **kw: Any) -> dict[str, Any]:
        return self.predictor.predict(
            DATASET, kw.pop("records", holdout_records(n=n)), request_id=request_id, routing_key=key, **kw
        )

    def captured(self, request_id: str | None = None) -> list[tuple[str, int, int, str]]:
        """(role, version, index, status) of the captured records (of one request), sorted."""
        found = [r for line in self.capture.lines for r in rec.decode_line(line)]
        return sorted(
            (r["role"], r["version"], r["index"], r["status"])
            for r in found
            if request_id is None or r["request_id"] == request_id
        )

    def records(self, request_id: str) -> list[dict[str, Any]]:
        return [
            r for line in self.capture.lines for r in rec.decode_line(line) if r["request_id"] == request_id
        ]


def both(
    role_a: str, a: int, role_b: str, b: int, n: int, status: str = "ok"
) -> list[tuple[str, int, int, str]]:
    return sorted([(role_a, a, i, status) for i in range(n)] + [(role_b, b, i, status) for i in range(n)])


# --- routing -------------------------------------------------------------------------------------------


def test_a_key_routed_to_the_candidate_gets_its_answer_named_and_the_champion_scores_it_too() -> None:
    world = World()
    answer = world.ask("a" * 32, key_for("candidate"))
    assert answer["version"] == 2 and answer["rollout"] == {"id": ROLLOUT_ID, "arm": "candidate"}
    assert world.captured() == both("canary", 2, "shadow", 1, 3)
    canary = [r for r in world.records("a" * 32) if r["role"] == "canary"]
    assert [r["prediction"] for r in canary] == [p["prediction"] for p in answer["predictions"]]
    assert [r["probabilities"] for r in canary] == [p["probabilities"] for p in answer["predictions"]]


def test_a_key_the_champion_answers_is_scored_once_and_names_the_rollout() -> None:
    world = World()
    answer = world.ask("b" * 32, key_for("champion"))
    assert answer["version"] == 1 and answer["rollout"] == {"id": ROLLOUT_ID, "arm": "champion"}
    assert world.captured() == [("champion", 1, i, "ok") for i in range(3)]


def test_without_a_routing_key_the_request_id_decides() -> None:
    world = World(share=50.0)
    ids = [f"{i:032x}" for i in range(40)]
    arms = {i: world.ask(i, n=1)["rollout"]["arm"] for i in ids}
    assert arms == {i: "candidate" if routing.to_candidate(ROLLOUT_ID, 50.0, i) else "champion" for i in ids}
    assert set(arms.values()) == {"candidate", "champion"}


def test_one_key_gets_one_version_across_requests_and_containers() -> None:
    world = World(share=30.0)
    keys = [f"user-{i}" for i in range(60)]
    first = {k: world.ask(f"{i:032x}", k, n=1)["version"] for i, k in enumerate(keys)}
    other = world.container()
    again = {
        k: other.predict(DATASET, holdout_records(n=1), request_id=f"{i + 100:032x}", routing_key=k)[
            "version"
        ]
        for i, k in enumerate(keys)
    }
    assert first == again and set(first.values()) == {1, 2}


def test_no_rollout_no_routing_and_no_rollout_in_the_answer() -> None:
    world = World()
    world.registry.pointer = None
    answer = world.ask("c" * 32, key_for("candidate"))
    assert answer["version"] == 1 and "rollout" not in answer


@pytest.mark.parametrize("status", [ro.COMPLETED, ro.ABORTED])
def test_an_ended_rollout_routes_nothing(status: str) -> None:
    world = World()
    world.registry.pointer = pointer(2, 1, percent=10.0, status=status, step=1)
    answer = world.ask("c" * 32, key_for("candidate"))
    assert answer["version"] == 1 and "rollout" not in answer


def test_a_paused_rollout_keeps_routing_its_share() -> None:
    world = World()
    world.registry.pointer = pointer(2, 1, percent=10.0, status=ro.PAUSED)
    assert world.ask("d" * 32, key_for("candidate"))["rollout"]["arm"] == "candidate"


def test_a_rollout_of_another_champion_routes_nothing() -> None:
    """A pointer naming another champion (the champion moved; a stale read) never routes."""
    world = World()
    world.registry.pointer = pointer(2, 3)
    answer = world.ask("e" * 32, key_for("candidate"))
    assert answer["version"] == 1 and "rollout" not in answer


def test_a_pinned_version_never_routes() -> None:
    world = World(step=1)  # 100%: every key to the candidate
    answer = world.ask("f" * 32, key_for("candidate"), version=1)
    assert answer["version"] == 1 and "rollout" not in answer
    assert world.captured() == [("pinned", 1, i, "ok") for i in range(3)]


def test_the_rollout_pointer_is_read_once_per_ttl_and_its_change_seen_after_it() -> None:
    world = World()
    key = key_for("candidate")
    for i in range(5):
        assert world.ask(f"{i:032x}", key, n=1)["version"] == 2
    assert world.registry.reads["rollout"] == 1
    world.registry.pointer = pointer(2, 1, status=ro.ABORTED)
    world.now[0] += 9.0
    assert world.ask("1" * 32, key, n=1)["version"] == 2  # still cached
    world.now[0] += 1.5
    assert world.ask("2" * 32, key, n=1)["version"] == 1
    assert world.registry.reads["rollout"] == 2


def test_a_challenger_that_is_the_candidate_is_not_scored_twice() -> None:
    world = World()
    world.registry.challenger_version = 2
    world.ask("a" * 32, key_for("candidate"))
    assert world.captured() == both("canary", 2, "shadow", 1, 3)
    world.ask("b" * 32, key_for("champion"))  # the champion answered: the challenger shadows as ever
    assert world.captured("b" * 32) == both("champion", 1, "shadow", 2, 3)


def test_another_challenger_still_shadows_the_candidates_answers() -> None:
    world = World()
    world.registry.add(stored_version(world.artifacts, 3, "stump"))
    world.registry.challenger_version = 3
    world.ask("a" * 32, key_for("candidate"), n=2)
    assert world.captured() == sorted(
        both("canary", 2, "shadow", 1, 2) + [("shadow", 3, i, "ok") for i in range(2)]
    )


# --- the candidate never fails a request -----------------------------------------------------------


def _strict_radius(schema: dict[str, Any]) -> None:
    """The candidate refuses a mean radius above 14 (the champion takes up to 1,000)."""
    for feature in schema["features"]:
        if feature["name"] == "mean_radius":
            feature["max"] = 14.0


def test_records_the_candidate_refuses_are_answered_by_the_champion_and_its_refusal_captured() -> None:
    world = World()
    world.registry.add(stored_version(world.artifacts, 2, "logistic", "rolling_out", schema=_strict_radius))
    records = [r for r in holdout_records(n=40) if r["mean_radius"] > 14][:2]
    answer = world.ask("a" * 32, key_for("candidate"), records=records)
    assert answer["version"] == 1 and answer["rollout"] == {"id": ROLLOUT_ID, "arm": "champion"}
    assert world.captured() == sorted(
        [("canary", 2, i, "invalid") for i in range(2)] + [("champion", 1, i, "ok") for i in range(2)]
    )
    refused = [r for r in world.records("a" * 32) if r["role"] == "canary"]
    assert all(r["problems"] == ["mean_radius"] and r["prediction"] is None for r in refused)


def test_records_both_refuse_are_a_client_error_with_both_refusals_captured() -> None:
    world = World()
    records = holdout_records(n=2)
    records[1]["mean_radius"] = "not a number"
    with pytest.raises(InvalidInput):
        world.ask("a" * 32, key_for("candidate"), records=records)
    assert world.captured() == both("canary", 2, "champion", 1, 2, "invalid")


def test_a_candidate_that_cannot_load_is_an_error_captured_while_the_champion_answers() -> None:
    world = World()
    world.registry.add(
        stored_version(world.artifacts, 2, "logistic", "rolling_out", files={"model.onnx": b"not onnx"})
    )
    answer = world.ask("a" * 32, key_for("candidate"))
    assert answer["version"] == 1 and answer["rollout"]["arm"] == "champion"
    assert world.captured() == sorted(
        [("canary", 2, i, "error") for i in range(3)] + [("champion", 1, i, "ok") for i in range(3)]
    )


def test_a_candidate_that_cannot_load_is_tried_again_once_per_ttl_not_per_request() -> None:
    world = World()
    world.registry.add(
        stored_version(world.artifacts, 2, "logistic", "rolling_out", files={"model.onnx": b"not onnx"})
    )
    fetched: list[str] = []
    read = world.artifacts.read

    def counted(bucket: str, key: str, version_id: str | None = None) -> Any:
        fetched.append(key)
        return read(bucket, key, version_id)

    world.artifacts.read = counted  # type: ignore[method-assign]
    key = key_for("candidate")
    for i in range(5):
        assert world.ask(f"{i:032x}", key, n=1)["version"] == 1
    candidate_files = [k for k in fetched if "/v2/" in k]
    assert sorted(candidate_files) == [
        f"models/{DATASET}/v2/{name}" for name in ("input_schema.json", "model.onnx")
    ]
    assert [status for role, _, _, status in world.captured() if role == "canary"] == ["error"] * 5
    world.now[0] += 10.5
    assert world.ask("f" * 32, key, n=1)["version"] == 1
    assert len([k for k in fetched if "/v2/" in k]) == 4  # tried again after the TTL


def _unbounded(schema: dict[str, Any]) -> None:
    """The contract's bounds left out (a contract need not give any)."""
    for feature in schema["features"]:
        feature.pop("min", None)
        feature.pop("max", None)


def test_a_candidate_whose_scores_are_not_finite_leaves_the_answer_to_the_champion() -> None:
    """Huge values of both signs: the logistic regression's weighted sum meets inf - inf (its score is
    NaN); the forest's thresholds take them. Neither schema bounds the features here."""
    world = World()
    world.registry.add(stored_version(world.artifacts, 1, "forest", "champion", schema=_unbounded))
    world.registry.add(stored_version(world.artifacts, 2, "logistic", "rolling_out", schema=_unbounded))
    records = holdout_records(n=2)
    records[0] = {name: (1e307 if i % 2 else -1e307) for i, name in enumerate(records[0])}
    answer = world.ask("a" * 32, key_for("candidate"), records=records)
    assert answer["version"] == 1 and answer["rollout"]["arm"] == "champion"
    canary = [r for r in world.records("a" * 32) if r["role"] == "canary"]
    assert {r["status"] for r in canary} == {"invalid"} and canary[0]["problems"]
    assert [r["role"] for r in world.records("a" * 32) if r["status"] == "ok"] == ["champion", "champion"]


@pytest.mark.parametrize("status", ["rejected"])
def test_a_candidate_no_longer_servable_is_skipped_without_a_record(status: str) -> None:
    world = World()
    world.registry.docs[2] = {**world.registry.docs[2], "status": status}
    answer = world.ask("a" * 32, key_for("candidate"))
    assert answer["version"] == 1 and answer["rollout"]["arm"] == "champion"
    assert world.captured() == [("champion", 1, i, "ok") for i in range(3)]


def test_a_tainted_candidate_is_skipped_too() -> None:
    world = World()
    taint = {"u1": {"trained": True, "by": "bob", "reason": "consent withdrawn"}}
    world.registry.docs[2] = {**world.registry.docs[2], "tainted": taint}
    assert world.ask("a" * 32, key_for("candidate"))["version"] == 1


def test_the_champion_failing_on_the_candidates_records_never_fails_the_candidates_answer() -> None:
    """The champion refuses what the candidate answers: the candidate's answer stands; the champion's
    refusal is captured as its shadow record."""
    world = World()
    world.registry.add(stored_version(world.artifacts, 1, "forest", "champion", schema=_strict_radius))
    records = [r for r in holdout_records(n=40) if r["mean_radius"] > 14][:2]
    answer = world.ask("a" * 32, key_for("candidate"), records=records)
    assert answer["version"] == 2 and answer["rollout"]["arm"] == "candidate"
    assert world.captured() == sorted(
        [("canary", 2, i, "ok") for i in range(2)] + [("shadow", 1, i, "invalid") for i in range(2)]
    )


# --- the routing key in the request body ------------------------------------------------------------


def test_the_routing_key_is_optional_text_of_bounded_length() -> None:
    assert PredictRequest.parse({"records": [{}]}).routing_key is None
    assert PredictRequest.parse({"records": [{}], "routing_key": "u" * routing.MAX_ROUTING_KEY}).routing_key
    for bad in ("", "u" * (routing.MAX_ROUTING_KEY + 1), 42, ["u"]):
        with pytest.raises(BadRequest) as refused:
            PredictRequest.parse({"records": [{}], "routing_key": bad})
        assert refused.value.field == "routing_key", json.dumps(bad)
