"""What served when (``chalicelib.registry.history``): the champion at any instant, from ledgers
generated as the registry writes them (promotions, and rollbacks by ``states.rollback_of``), and
the parsing of the instant asked about (ISO 8601; naive means UTC)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.errors import InvalidInput
from chalicelib.registry import history, states

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
MODEL = "churn"


def ledger_of(steps: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """The audit ledger the registry writes for ``steps`` (``promote`` or ``rollback``, and the
    seconds since the previous step), each entry as ``Promotion.entry`` makes it. A rollback with
    nothing to roll back is skipped, as the registry refuses it."""
    ledger: list[dict[str, Any]] = []
    pointer: states.Champion | None = None
    latest, at = 0, T0
    for action, gap in steps:
        at += timedelta(seconds=gap)
        if action == states.ROLLBACK:
            try:
                change = states.rollback_of(MODEL, pointer, ledger, "ops (admin)", "bad predictions")
            except states.NothingToRollBack:
                continue
        else:
            latest += 1
            expected = pointer.version if pointer else None
            change = states.Promotion(MODEL, latest, "evaluator", f"v{latest} beat the champion", expected)
        seq = (pointer.seq if pointer else 0) + 1
        entry = change.entry(seq, at.isoformat(timespec="microseconds"))
        ledger.append({**entry, "id": states.audit_id(entry["at"], seq), "model": MODEL})
        pointer = states.Champion(change.version, seq)
    return ledger


step = st.tuples(
    st.sampled_from([states.PROMOTE, states.PROMOTE, states.ROLLBACK]),
    st.floats(0.001, 86_400.0),  # strictly later each time (the same instant: a test below)
)
# A first champion, then any promotions and rollbacks (those past the first are refused, skipped).
steps = st.builds(
    lambda first, rest: [(states.PROMOTE, first), *rest], st.floats(0.001, 60.0), st.lists(step, max_size=12)
)


@given(steps)
def test_the_champion_at_each_entry_s_time_is_that_entry_s_to_version(plan):
    ledger = ledger_of(plan)
    for entry in ledger:
        answer = history.champion_at(MODEL, ledger, history.parse_instant(entry["at"], T0))
        assert answer["champion"] == entry["to_version"]
        assert answer["change"]["seq"] == entry["seq"] and answer["change"]["action"] == entry["action"]
        assert answer["change"]["who"] == entry["who"] and answer["change"]["reason"] == entry["reason"]


@given(steps)
def test_between_two_changes_the_earlier_one_s_version_served(plan):
    ledger = ledger_of(plan)
    for before, after in itertools.pairwise(ledger):
        start, end = (history.parse_instant(e["at"], T0) for e in (before, after))
        answer = history.champion_at(MODEL, ledger, start + (end - start) / 2)
        assert answer["champion"] == before["to_version"]
        assert answer["since"] == history.iso(start) and answer["until"] == history.iso(end)
    last = history.champion_at(MODEL, ledger, T0 + timedelta(days=400))
    assert last["champion"] == ledger[-1]["to_version"] and last["until"] is None


@given(steps)
def test_before_the_first_champion_there_is_none_and_the_note_says_when_it_came(plan):
    ledger = ledger_of(plan)
    answer = history.champion_at(MODEL, ledger, T0)
    assert answer["champion"] is None and answer["change"] is None
    assert answer["until"] == history.iso(history.parse_instant(ledger[0]["at"], T0))
    assert "no champion yet" in answer["note"] and "v1" in answer["note"]


@given(steps)
def test_the_timeline_is_every_change_in_order_without_gaps(plan):
    ledger = ledger_of(plan)
    periods = history.timeline(MODEL, ledger)
    assert [p["champion"] for p in periods] == [e["to_version"] for e in ledger]
    assert all(a["until"] == b["since"] for a, b in itertools.pairwise(periods))
    assert periods[-1]["until"] is None


def test_a_rollback_is_shown_with_who_rolled_back_and_why():
    ledger = ledger_of([("promote", 1), ("promote", 60), ("rollback", 60), ("promote", 60)])
    assert [(e["action"], e["from_version"], e["to_version"]) for e in ledger] == [
        ("promote", None, 1),
        ("promote", 1, 2),
        ("rollback", 2, 1),
        ("promote", 1, 3),
    ]
    answer = history.champion_at(MODEL, ledger, T0 + timedelta(seconds=150))
    assert answer["champion"] == 1 and answer["change"]["action"] == "rollback"
    assert answer["change"]["undoes"] == 2 and answer["change"]["who"] == "ops (admin)"
    assert "rollback by ops (admin): bad predictions" in answer["note"]


def test_a_model_that_never_had_a_champion_says_so():
    answer = history.champion_at(MODEL, [], T0)
    assert answer["champion"] is None and answer["note"] == "churn has never had a champion"


def test_two_changes_in_one_instant_answer_the_later():
    ledger = ledger_of([("promote", 1), ("promote", 60), ("rollback", 0.0)])
    assert ledger[1]["at"] == ledger[2]["at"]
    assert history.champion_at(MODEL, ledger, history.parse_instant(ledger[2]["at"], T0))["champion"] == 1


def test_a_clock_behind_the_ledger_s_order_never_runs_the_timeline_backwards():
    ledger = ledger_of([("promote", 1), ("promote", 60), ("promote", 60)])
    ledger[2]["at"] = ledger[0]["at"]  # v3's promotion stamped by a clock two minutes slow
    periods = history.timeline(MODEL, ledger)
    assert [p["since"] for p in periods] == sorted(p["since"] for p in periods)
    assert history.champion_at(MODEL, ledger, T0 + timedelta(days=1))["champion"] == 3


# --- the instant asked about -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T12:00:00Z", datetime(2026, 11, 30, 12, tzinfo=UTC)),
        ("2026-11-30T13:30:00+01:30", datetime(2026, 11, 30, 12, tzinfo=UTC)),
        ("2026-11-30T13:00:00 01:00", datetime(2026, 11, 30, 12, tzinfo=UTC)),  # '+' sent unencoded
        ("2026-11-30T12:00:00", datetime(2026, 11, 30, 12, tzinfo=UTC)),  # naive: UTC
        ("2026-11-30 12:00", datetime(2026, 11, 30, 12, tzinfo=UTC)),
        ("2026-11-30", datetime(2026, 11, 30, tzinfo=UTC)),
        ("20261130T120000Z", datetime(2026, 11, 30, 12, tzinfo=UTC)),
        ("2026-11-30T12:00:00.250-05:00", datetime(2026, 11, 30, 17, 0, 0, 250_000, tzinfo=UTC)),
    ],
)
def test_an_instant_is_iso_8601_with_naive_ones_taken_as_utc(text, expected):
    assert history.parse_instant(text, T0) == expected


def test_no_instant_means_now():
    now = datetime(2026, 11, 30, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert history.parse_instant(None, now) == datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    ["", " ", "yesterday", "2026-13-01", "2026-11-30T25:00", "12:00", "1733000000", "\uff12\uff10\uff12\uff16-11-30",
     "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00", "2026-11-30T12:00:00+25:00", "x" * 500],
)  # fmt: skip
def test_a_malformed_instant_is_refused_naming_at(text):
    with pytest.raises(InvalidInput, match=r"^at: .* is not an ISO 8601 instant"):
        history.parse_instant(text, T0)


@given(st.text(max_size=80))
def test_any_text_is_an_instant_in_utc_or_refused_naming_at(text):
    try:
        instant = history.parse_instant(text, T0)
    except InvalidInput as exc:
        assert str(exc).startswith("at: ")
    else:
        assert instant.utcoffset() == timedelta(0)


@given(steps, st.integers(-14 * 60, 14 * 60))
def test_the_same_instant_in_any_offset_gets_the_same_answer(plan, minutes):
    ledger = ledger_of(plan)
    instant = history.parse_instant(ledger[-1]["at"], T0) + timedelta(seconds=1)
    shifted = instant.astimezone(timezone(timedelta(minutes=minutes))).isoformat()
    assert history.champion_at(MODEL, ledger, history.parse_instant(shifted, T0)) == history.champion_at(
        MODEL, ledger, instant
    )
