"""The join of outcomes (true labels, received later) to the predictions they judge (docs/monitoring.md).

The rule, pure and independent of the order outcomes are handed in:

* an outcome matches a captured record of role ``champion``, ``canary`` (a rollout candidate's
  answer), ``pinned`` or ``batch`` whose status is ``ok`` (it holds a prediction) by ``(request_id,
  index)``, or by ``row_id``; a shadow record never joins (its answer was not given to anyone: the
  challenger's, or the champion's beside a canary answer);
* outcomes are taken in the order they were received (``received_at``; ties by a stable key of the
  outcome's fields, so the result never depends on the order of a listing);
* the FIRST outcome received for a prediction counts; a later one with the same label is a
  *duplicate* (counted), with another label a *conflict* (counted, ignored: a label that changes
  its mind is not evidence either way);
* an outcome received more than ``horizon`` after the prediction is *late* (counted, ignored): a
  window's figures settle once its horizon has passed;
* an outcome matching no prediction is *unmatched* (counted): a wrong id, or a prediction that was
  not captured (sampling) or lies outside the records given.

A row id may name several predictions (a row scored by two batch jobs): the outcome judges each.
Counts are per (outcome, prediction) except ``unmatched`` (per outcome) and ``predictions`` (the
joinable records); ``coverage`` is the share of those predictions with a counted outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

JOINED_ROLES = frozenset({"champion", "canary", "pinned", "batch"})


class OutcomeLike(Protocol):
    """What the join reads of an outcome (``chalicelib.monitoring.outcomes.Outcome``)."""

    @property
    def label(self) -> Any: ...
    @property
    def received_at(self) -> datetime | str: ...
    @property
    def source(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def index(self) -> int: ...
    @property
    def row_id(self) -> str | None: ...


@dataclass(frozen=True)
class Pair:
    """A prediction and the outcome that judges it."""

    record: Mapping[str, Any]
    outcome: OutcomeLike

    @property
    def label(self) -> Any:
        return self.outcome.label


@dataclass(frozen=True)
class JoinResult:
    pairs: tuple[Pair, ...] = ()
    predictions: int = 0  # joinable records: role champion/canary/pinned/batch, status ok
    duplicates: int = 0
    conflicts: int = 0
    late: int = 0
    unmatched: int = 0
    outcomes: int = 0  # outcomes given
    shadow_ignored: int = field(default=0)  # outcomes that would have matched only a shadow record

    @property
    def matched(self) -> int:
        return len(self.pairs)

    @property
    def coverage(self) -> float:
        return self.matched / self.predictions if self.predictions else 0.0

    def counts(self) -> dict[str, Any]:
        return {
            "predictions": self.predictions,
            "outcomes": self.outcomes,
            "matched": self.matched,
            "coverage": self.coverage,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "late": self.late,
            "unmatched": self.unmatched,
        }


def parse_time(value: datetime | str) -> datetime:
    """A record's or outcome's time as an aware UTC datetime (ISO 8601 text without a zone: UTC)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def label_key(label: Any) -> str:
    """A label as text, so 1 and "1" (a CSV upload) and True and "true" compare equal."""
    if isinstance(label, bool):
        return "true" if label else "false"
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label)


def _order(outcome: OutcomeLike) -> tuple[Any, ...]:
    return (
        parse_time(outcome.received_at),
        outcome.request_id or "",
        int(outcome.index or 0),
        outcome.row_id or "",
        outcome.source or "",
        label_key(outcome.label),
    )


def join(
    records: Iterable[Mapping[str, Any]], outcomes: Iterable[OutcomeLike], horizon: timedelta
) -> JoinResult:
    """Pairs of (prediction, first outcome received for it) and the counts of the rule above."""
    by_request: dict[tuple[str, int], list[int]] = {}
    by_row: dict[str, list[int]] = {}
    shadow_keys: set[tuple[str, int]] = set()
    shadow_rows: set[str] = set()
    joinable: list[Mapping[str, Any]] = []
    for record in records:
        request_key = (str(record.get("request_id")), int(record.get("index") or 0))
        row_id = record.get("row_id")
        if record.get("role") not in JOINED_ROLES or record.get("status") != "ok":
            if record.get("role") == "shadow":
                shadow_keys.add(request_key)
                if row_id is not None:
                    shadow_rows.add(str(row_id))
            continue
        position = len(joinable)
        joinable.append(record)
        by_request.setdefault(request_key, []).append(position)
        if row_id is not None:
            by_row.setdefault(str(row_id), []).append(position)
    times = [parse_time(r["time"]) for r in joinable]

    first: dict[int, OutcomeLike] = {}
    duplicates = conflicts = late = unmatched = shadow_ignored = given = 0
    for outcome in sorted(outcomes, key=_order):
        given += 1
        targets: list[int] = []
        if outcome.request_id is not None:
            targets += by_request.get((str(outcome.request_id), int(outcome.index or 0)), [])
        if outcome.row_id is not None:
            targets += [t for t in by_row.get(str(outcome.row_id), []) if t not in targets]
        if not targets:
            unmatched += 1
            if (str(outcome.request_id), int(outcome.index or 0)) in shadow_keys or (
                outcome.row_id is not None and str(outcome.row_id) in shadow_rows
            ):
                shadow_ignored += 1
            continue
        received = parse_time(outcome.received_at)
        for target in targets:
            if received - times[target] > horizon:
                late += 1
            elif target not in first:
                first[target] = outcome
            elif label_key(first[target].label) == label_key(outcome.label):
                duplicates += 1
            else:
                conflicts += 1
    pairs = tuple(Pair(joinable[t], first[t]) for t in sorted(first))
    return JoinResult(
        pairs=pairs,
        predictions=len(joinable),
        duplicates=duplicates,
        conflicts=conflicts,
        late=late,
        unmatched=unmatched,
        outcomes=given,
        shadow_ignored=shadow_ignored,
    )
