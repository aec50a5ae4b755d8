"""Which versions answer predictions (rejected and tainted ones do not), read once per TTL per
version, on every route, the shadow challenger included (a fake registry and clock; no sessions are
made)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.serving import predict, servable


class Statuses:
    """A registry reader whose versions' statuses the test sets; it counts the reads."""

    def __init__(self, **statuses: str) -> None:
        self.statuses = {int(k[1:]): v for k, v in statuses.items()}
        self.tainted: dict[int, dict[str, Any]] = {}
        self.reads = 0

    def version(self, name: str, v: int) -> dict[str, Any] | None:
        self.reads += 1
        if v not in self.statuses:
            return None
        return {
            "version": v,
            "status": self.statuses[v],
            **({"tainted": self.tainted[v]} if v in self.tainted else {}),
        }


def test_a_status_turning_unservable_is_refused_after_the_ttl_and_read_once_per_ttl():
    now = [0.0]
    registry = Statuses(v1="champion", v2="pending_approval")
    predictor = predict.Predictor(registry, artifacts=None, clock=lambda: now[0], ttl_s=10.0)  # type: ignore[arg-type]
    for _ in range(5):
        predictor.check_servable("m", 2)
    assert registry.reads == 1
    registry.statuses[2] = "rejected"
    now[0] = 9.9
    predictor.check_servable("m", 2)  # within the TTL: still the status read at 0
    now[0] = 10.0
    with pytest.raises(predict.NotServable, match="m v2 is rejected: a rejected version does not answer"):
        predictor.check_servable("m", 2)
    assert registry.reads == 2


def test_a_version_tainted_by_a_revoked_upload_stops_answering_after_the_ttl_whatever_its_status():
    now = [0.0]
    registry = Statuses(v1="champion")
    predictor = predict.Predictor(registry, artifacts=None, clock=lambda: now[0], ttl_s=10.0)  # type: ignore[arg-type]
    predictor.check_servable("m", 1)
    registry.tainted[1] = {
        "u9": {"trained": True, "evaluated": False, "by": "ops (admin)", "reason": "bad export"}
    }
    now[0] = 9.9
    predictor.check_servable("m", 1)  # within the TTL
    now[0] = 10.0
    with pytest.raises(
        predict.NotServable,
        match=r"^m v1 is tainted: trained on upload u9, revoked by ops \(admin\): bad export; "
        "a tainted version does not answer predictions$",
    ):
        predictor.check_servable("m", 1)


def test_only_rejected_and_tainted_versions_are_refused():
    assert (
        servable.refusal_reason({"status": "rejected"})
        == "is rejected: a rejected version does not answer predictions"
    )
    for status in ("candidate", "pending_approval", "approved", "champion", "retired", "superseded", None):
        assert servable.refusal_reason({"status": status}) is None
        assert servable.refusal_reason({"status": status, "tainted": {}}) is None
    assert servable.refusal_reason(None) is None


@pytest.mark.parametrize("tainted", [False, True])
def test_a_challenger_that_is_not_servable_is_neither_loaded_nor_scored(tainted):
    registry = Statuses(v2="pending_approval" if tainted else "rejected")
    if tainted:
        registry.tainted[2] = {"u9": {"trained": True, "evaluated": True, "by": "ops", "reason": "r"}}
    predictor = predict.Predictor(registry, artifacts=None, ttl_s=10.0)  # type: ignore[arg-type]
    predictor.challenger = lambda name: 2  # type: ignore[method-assign]
    loaded: list[int] = []
    predictor.session = lambda name, version: loaded.append(version)  # type: ignore[method-assign,assignment,return-value,func-returns-value]
    predictor._shadow("m", 1, [{}], None, None)  # type: ignore[arg-type]
    assert loaded == []
