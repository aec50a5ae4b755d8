"""What served when, on the in-memory registry: champions made by the evaluator, a person's approval
and a rollback (the real service calls), then asked about at instants read from the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import errors
from chalicelib.adapters.memory.notifier import MemoryNotifier
from chalicelib.adapters.memory.registry import MemoryRegistry
from chalicelib.registry import history, service

MODEL = "churn"
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


class Clock:
    """The registry's clock: an hour later at every reading."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(hours=1)
        return self.now


def _version(reg: MemoryRegistry, n: int) -> int:
    version, _ = reg.register_version(MODEL, {"run_id": f"run-{n}", "family": "logistic_regression"})
    return version


@pytest.fixture
def reg() -> MemoryRegistry:
    """v1 champion (evaluator), v2 champion (alice approved it), rolled back to v1 (ops), v3 champion."""
    reg = MemoryRegistry(clock=Clock())
    notifier = MemoryNotifier()
    v1 = _version(reg, 1)
    reg.set_status(MODEL, v1, "approved", "evaluator", "first model: floors passed")
    reg.promote(MODEL, v1, "evaluator", "first model: floors passed", expected_champion=None)
    v2 = _version(reg, 2)
    reg.set_status(MODEL, v2, "pending_approval", "evaluator", "manual mode", gates={"evaluated_against": 1})
    service.approve(reg, notifier, MODEL, v2, "alice (approver)", "gates look right")
    service.rollback(reg, notifier, MODEL, "ops (admin)", "latency spike after v2")
    v3 = _version(reg, 3)
    reg.set_status(MODEL, v3, "approved", "evaluator", "every gate passed")
    reg.promote(MODEL, v3, "evaluator", "every gate passed", expected_champion=1)
    return reg


def _at(entry: dict[str, Any], minutes: int = 0) -> str:
    return (datetime.fromisoformat(entry["at"]) + timedelta(minutes=minutes)).isoformat()


def test_the_champion_at_three_instants_of_the_ledger_and_why(reg):
    ledger = reg.audit(MODEL)
    assert [(e["action"], e["to_version"]) for e in ledger] == [
        ("promote", 1),
        ("promote", 2),
        ("rollback", 1),
        ("promote", 3),
    ]
    now = datetime.now(UTC)
    during_v2 = history.champion_at_instant(reg, MODEL, _at(ledger[1], minutes=5), now)
    assert during_v2["champion"] == 2 and during_v2["change"]["who"] == "alice (approver)"
    assert during_v2["change"]["reason"] == "gates look right" and during_v2["until"] == _at(ledger[2])
    after_rollback = history.champion_at_instant(reg, MODEL, _at(ledger[2], minutes=1), now)
    assert after_rollback["champion"] == 1 and after_rollback["change"]["action"] == "rollback"
    assert after_rollback["change"]["who"] == "ops (admin)" and "latency spike" in after_rollback["note"]
    before = history.champion_at_instant(reg, MODEL, _at(ledger[0], minutes=-1), now)
    assert before["champion"] is None and "no champion yet" in before["note"]


def test_without_an_instant_the_answer_is_the_champion_now(reg):
    answer = history.champion_at_instant(reg, MODEL, None, datetime.now(UTC))
    assert answer["champion"] == reg.champion(MODEL) == 3 and answer["until"] is None


def test_an_instant_with_an_offset_or_none_is_the_same_utc_instant(reg):
    entry = reg.audit(MODEL)[1]
    utc = datetime.fromisoformat(entry["at"]) + timedelta(minutes=5)
    naive = utc.replace(tzinfo=None).isoformat()
    paris = utc.astimezone(datetime.fromisoformat("2026-11-02T00:00:00+01:00").tzinfo).isoformat()
    now = datetime.now(UTC)
    answers = [history.champion_at_instant(reg, MODEL, at, now) for at in (utc.isoformat(), naive, paris)]
    assert [a["champion"] for a in answers] == [2, 2, 2] and len({a["at"] for a in answers}) == 1


def test_an_unknown_model_is_not_found_and_a_bad_instant_names_at(reg):
    now = datetime.now(UTC)
    with pytest.raises(errors.NotFound, match="no model named 'nothing'"):
        history.champion_at_instant(reg, "nothing", None, now)
    with pytest.raises(errors.InvalidInput, match=r"^at: 'last tuesday' is not an ISO 8601 instant"):
        history.champion_at_instant(reg, MODEL, "last tuesday", now)


def test_a_model_with_versions_but_no_champion_yet_answers_none(reg):
    other = MemoryRegistry()
    other.register_version("fresh", {"run_id": "r1"})
    answer = history.champion_at_instant(other, "fresh", None, datetime.now(UTC))
    assert answer["champion"] is None and answer["note"] == "fresh has never had a champion"
