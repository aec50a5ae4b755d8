"""Which versions answer predictions: the NOT_SERVABLE hook, read once per TTL per version, on every
route, the shadow challenger included (a fake registry and clock; no sessions are made)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.serving import model, predict


class Statuses:
    """A registry reader whose versions' statuses the test sets; it counts the reads."""

    def __init__(self, **statuses: str) -> None:
        self.statuses = {int(k[1:]): v for k, v in statuses.items()}
        self.reads = 0

    def version(self, name: str, v: int) -> dict[str, Any] | None:
        self.reads += 1
        return {"version": v, "status": self.statuses[v]} if v in self.statuses else None


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


def test_the_hook_takes_any_status_added_to_not_servable(monkeypatch):
    monkeypatch.setattr(model, "NOT_SERVABLE", model.NOT_SERVABLE | {"tainted"})
    predictor = predict.Predictor(Statuses(v1="tainted"), artifacts=None, ttl_s=10.0)  # type: ignore[arg-type]
    with pytest.raises(predict.NotServable, match="tainted"):
        predictor.check_servable("m", 1)
    assert model.not_servable("rejected") and not model.not_servable("superseded")
    assert not model.not_servable(None)


def test_a_challenger_that_is_not_servable_is_neither_loaded_nor_scored():
    predictor = predict.Predictor(Statuses(v2="rejected"), artifacts=None, ttl_s=10.0)  # type: ignore[arg-type]
    predictor.challenger = lambda name: 2  # type: ignore[method-assign]
    loaded: list[int] = []
    predictor.session = lambda name, version: loaded.append(version)  # type: ignore[method-assign,assignment,return-value,func-returns-value]
    predictor._shadow("m", 1, [{}], None, None)  # type: ignore[arg-type]
    assert loaded == []
