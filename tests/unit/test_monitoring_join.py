"""The join of outcomes to captured predictions: first received counts, duplicates, conflicts, late,
unmatched; shadow answers never join; the order outcomes arrive in changes nothing."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.monitoring.join import join
from tests.monitoring_support import T0, outcome, record

HORIZON = timedelta(hours=168)


def test_each_rule_of_the_join_counts_once_in_a_hand_checked_case() -> None:
    records = [
        record({"a": 1.0}, 1, request_id="r1"),
        record({"a": 1.0}, 2, request_id="r2", index=3, role="batch", row_id="row-7"),
        record({"a": 1.0}, 3, request_id="r3", role="shadow"),
        record({"a": 1.0}, 4, request_id="r4", role="pinned"),
        record({"a": 1.0}, 5, request_id="r5", status="invalid"),
    ]
    outcomes = [
        outcome(1, 10, request_id="r1"),  # counts
        outcome(1, 20, request_id="r1"),  # duplicate
        outcome(0, 30, request_id="r1"),  # conflict
        outcome(0, 60 * 200, row_id="row-7"),  # late: 200 hours after the prediction
        outcome(1, 5, request_id="r3"),  # a shadow answer: unmatched
        outcome(1, 5, request_id="nope"),  # unmatched
        outcome(0, 5, request_id="r5"),  # no prediction was given: unmatched
        outcome(0, 40, request_id="r4"),  # counts
    ]
    result = join(records, outcomes, HORIZON)
    assert result.counts() == {
        "predictions": 3,
        "outcomes": 8,
        "matched": 2,
        "coverage": 2 / 3,
        "duplicates": 1,
        "conflicts": 1,
        "late": 1,
        "unmatched": 3,
    }
    assert [(p.record["request_id"], p.label) for p in result.pairs] == [("r1", 1), ("r4", 0)]
    assert result.shadow_ignored == 1


def test_an_outcome_judges_a_rollout_candidates_answer_never_the_champions_shadow_beside_it() -> None:
    """During a rollout the candidate answered (role canary) and the champion scored the same record
    (role shadow): the outcome joins the answer given."""
    records = [
        record({"a": 1.0}, 1, request_id="r1", role="canary", version=2),
        record({"a": 1.0}, 1, request_id="r1", role="shadow", version=1),
    ]
    result = join(records, [outcome(1, 5, request_id="r1")], HORIZON)
    assert result.predictions == 1
    assert [(p.record["role"], p.record["version"]) for p in result.pairs] == [("canary", 2)]


def test_an_outcome_finds_a_batch_row_by_its_row_id_and_request_position() -> None:
    records = [record({"a": 1.0}, 1, request_id="job", index=4, role="batch", row_id="row-9")]
    by_row = join(records, [outcome(1, 1, row_id="row-9")], HORIZON)
    by_position = join(records, [outcome(1, 1, request_id="job", index=4)], HORIZON)
    wrong_index = join(records, [outcome(1, 1, request_id="job", index=5)], HORIZON)
    assert by_row.matched == by_position.matched == 1
    assert wrong_index.matched == 0 and wrong_index.unmatched == 1


def test_of_two_outcomes_received_at_the_same_moment_the_same_one_counts_whatever_their_order() -> None:
    records = [record({"a": 1.0}, 1, request_id="r1")]
    first, second = outcome(1, 5, request_id="r1"), outcome(0, 5, request_id="r1")
    forward = join(records, [first, second], HORIZON)
    backward = join(records, [second, first], HORIZON)
    assert [p.label for p in forward.pairs] == [p.label for p in backward.pairs]
    assert forward.conflicts == backward.conflicts == 1


def test_an_outcome_exactly_at_the_horizon_counts_and_one_just_after_is_late() -> None:
    records = [record({"a": 1.0}, 1, request_id="r1"), record({"a": 1.0}, 2, request_id="r2")]
    minutes = HORIZON.total_seconds() / 60
    result = join(
        records,
        [outcome(1, minutes, request_id="r1"), outcome(1, minutes + 0.001, request_id="r2")],
        HORIZON,
    )
    assert (result.matched, result.late) == (1, 1)


_roles = st.sampled_from(["champion", "canary", "pinned", "batch", "shadow"])
_records = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 2), _roles, st.sampled_from([None, "row-1", "row-2"])),
    max_size=12,
    unique_by=lambda t: (t[0], t[1], t[2]),
)
_outcomes = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 6)),
        st.integers(0, 2),
        st.sampled_from([None, "row-1", "row-2", "row-3"]),
        st.integers(0, 1),
        st.integers(0, 400 * 60),
    ),
    max_size=15,
)


def _build(record_specs: list, outcome_specs: list) -> tuple[list, list]:
    records = [
        record({"a": 1.0}, i, request_id=f"r{rid}", index=index, role=role, row_id=row, time=T0)
        for i, (rid, index, role, row) in enumerate(record_specs)
    ]
    outcomes = [
        outcome(label, minutes, request_id=None if rid is None else f"r{rid}", index=index, row_id=row)
        for rid, index, row, label, minutes in outcome_specs
    ]
    return records, outcomes


@given(_records, _outcomes, st.randoms(use_true_random=False))
def test_the_order_outcomes_arrive_in_changes_no_count_and_no_pair(record_specs, outcome_specs, rnd) -> None:
    records, outcomes = _build(record_specs, outcome_specs)
    shuffled = list(outcomes)
    rnd.shuffle(shuffled)
    a, b = join(records, outcomes, HORIZON), join(records, shuffled, HORIZON)
    assert a.counts() == b.counts()
    assert [(id(p.record), p.outcome) for p in a.pairs] == [(id(p.record), p.outcome) for p in b.pairs]


@given(_records, _outcomes)
def test_shadow_answers_never_join_and_coverage_stays_within_one(record_specs, outcome_specs) -> None:
    records, outcomes = _build(record_specs, outcome_specs)
    result = join(records, outcomes, HORIZON)
    assert all(p.record["role"] != "shadow" for p in result.pairs)
    assert 0.0 <= result.coverage <= 1.0
    assert result.predictions == sum(1 for r in records if r["role"] != "shadow")
    assert result.unmatched <= len(outcomes)
