"""Progressive delivery: a rollout of a new champion, as registry state (the rules; pure Python).

A **rollout** gives a candidate version a growing share of the champion route's ``/predict``
traffic, step by step, each step held for a bake time, while guards compare what it answered with
what the champion answered on the same requests (``chalicelib.rollout``). It ends in one of two ways:

* **completed**: after the last step (100%) has baked with no guard breached, the candidate becomes
  the champion through the same all-or-nothing change as any promotion (``Registry.complete_rollout``:
  the champion pointer, the old champion retired, the waiting versions superseded, the champion
  ledger's ``promote`` entry, and the rollout's end, in one transaction);
* **aborted**: by a guard breach (automatically, at once) or by a person: all traffic goes back to
  the champion; the candidate returns to ``pending_approval`` (or ``retired``, if it was a former
  champion), so a person can approve it again (a new rollout) or reject it.

States (``status``)::

    (none) --start--> active --step--> active ... --complete--> completed
                       |  ^                 |
                 pause |  | resume          | abort (guard or person)
                       v  |                 v
                      paused --abort--> aborted

A paused rollout keeps its share and is still guarded (a breach aborts it), but never steps.

The version's status follows: ``pending_approval``/``approved``/``candidate``/``retired`` ->
``rolling_out`` at the start (an approval is recorded with it: every champion has an approval in its
transitions), ``rolling_out`` -> ``champion`` at completion, -> ``pending_approval`` (or ``retired``)
at an abort. While a rollout is active or paused, no other champion change commits (promote,
approve, rollback: 409, "abort the rollout first").

**Events**: every start, step, pause, resume, completion and abort is an event (``Event``): who, why,
when, the share before and after, and for guard decisions the figures. Events are written
create-only with the state change that makes them, in one transaction; a rollout's ``revision`` is
its number of events, and every change is conditional on the revision it read, so of a person's
abort and the evaluator's step racing, exactly one commits and the other re-reads (and finds the
rollout ended, or decides anew).

**Schedules** (``Schedule``): ``canary`` ``p``: steps ``p%``, then ``100%``; ``linear`` ``p``: ``p%``,
``2p%``, ... ``100%``. Each step is held for ``bake_s`` seconds and at least the guards'
``min_requests`` candidate answers (a step never advances on no evidence). The contract's
``promotion.rollout`` section (``RolloutPolicy``) sets the default schedule and the guards; a caller
may give another schedule.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from chalicelib.registry import states
from chalicelib.registry.states import RolloutConflict
from chalicelib.serving import routing
from chalicelib.validation.exceptions import ContractError

ACTIVE, PAUSED, COMPLETED, ABORTED = "active", "paused", "completed", "aborted"
RUNNING = (ACTIVE, PAUSED)
ENDED = (COMPLETED, ABORTED)
CANARY, LINEAR, NONE = "canary", "linear", "none"
STRATEGIES = (CANARY, LINEAR)
START, STEP, PAUSE, RESUME, COMPLETE, ABORT = "start", "step", "pause", "resume", "complete", "abort"
ACTIONS = (START, STEP, PAUSE, RESUME, COMPLETE, ABORT)
EVALUATOR = "rollout-guard"  # who the evaluator's steps, completions and aborts name
MAX_STEPS = 100
MAX_BAKE_S = 7 * 24 * 3600
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d)?\s*$")
_UNIT_S = {None: 60.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hr": 3600.0, "d": 86400.0}


def parse_duration(value: Any, where: str) -> int:
    """Seconds from ``"15m"``, ``"90s"``, ``"1h"``, ``"2d"`` or a number of minutes; ``ValueError``
    naming ``where`` otherwise (0 is allowed: no bake)."""
    if isinstance(value, bool):
        raise ValueError(f"{where}: give a duration such as 15m, 90s or 1h, not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value) * 60.0
    else:
        found = _DURATION.match(value) if isinstance(value, str) else None
        if not found:
            raise ValueError(f"{where}: give a duration such as 15m, 90s or 1h, not {value!r}")
        seconds = float(found.group(1)) * _UNIT_S[found.group(2)]
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_BAKE_S:
        raise ValueError(f"{where}: {value!r} must be between 0 and 7 days")
    return round(seconds)


def _percent(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: a percentage (a number above 0 and below 100) is required, got {value!r}")
    if not 0 < value < 100:
        raise ValueError(f"{where}: {value!r} must be above 0 and below 100 (a share of the traffic, in %)")
    return float(value)


@dataclass(frozen=True)
class Schedule:
    """The shares (percent, rising, the last 100) a rollout steps through, each held ``bake_s``."""

    strategy: str
    percent: float
    bake_s: int

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy: {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        _percent(self.percent, self.strategy)
        if not 0 <= self.bake_s <= MAX_BAKE_S:
            raise ValueError(f"bake: {self.bake_s} s must be between 0 and 7 days")
        if len(self.steps) > MAX_STEPS:
            raise ValueError(f"{self.strategy}: {self.percent:g}% makes more than {MAX_STEPS} steps")

    @property
    def steps(self) -> tuple[float, ...]:
        if self.strategy == CANARY:
            return (self.percent, 100.0)
        count = math.ceil(100.0 / self.percent - 1e-9)
        return tuple(min(100.0, round(self.percent * (i + 1), 6)) for i in range(count))

    def describe(self) -> str:
        steps = " -> ".join(f"{s:g}%" for s in self.steps)
        return f"{self.strategy} {steps}, each held {self.bake_s // 60} min {self.bake_s % 60} s"

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "percent": self.percent,
            "bake_s": self.bake_s,
            "steps": list(self.steps),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Schedule:
        return cls(str(doc["strategy"]), float(doc["percent"]), int(doc["bake_s"]))

    @classmethod
    def from_request(cls, doc: Any, default: Schedule) -> Schedule:
        """A caller's schedule: ``{"canary": 10, "bake": "15m"}`` or ``{"linear": 20, "every":
        "10m"}``; what it leaves out comes from ``default``. ``ValueError`` naming the field."""
        if doc is None:
            return default
        if not isinstance(doc, dict):
            raise ValueError('rollout: a JSON object such as {"canary": 10, "bake": "15m"} is required')
        unknown = sorted(set(doc) - {"canary", "linear", "bake", "every"})
        if unknown:
            raise ValueError(f"rollout.{unknown[0]}: not a known field (canary, linear, bake, every)")
        if "canary" in doc and "linear" in doc:
            raise ValueError("rollout: give canary or linear, not both")
        strategy, percent = default.strategy, default.percent
        if "canary" in doc:
            strategy, percent = CANARY, _percent(doc["canary"], "rollout.canary")
        elif "linear" in doc:
            strategy, percent = LINEAR, _percent(doc["linear"], "rollout.linear")
        bake = default.bake_s
        for name in ("bake", "every"):
            if name in doc:
                bake = parse_duration(doc[name], f"rollout.{name}")
        return cls(strategy, percent, bake)


DEFAULT_SCHEDULE = Schedule(CANARY, 10.0, 15 * 60)


@dataclass(frozen=True)
class Guards:
    """What the candidate's answers may differ from the champion's on the same requests before the
    rollout is aborted (``chalicelib.rollout.guards`` measures them; docs/rollouts.md says why)."""

    max_error_rate: float = 0.01  # candidate errors beyond the champion's, as a share of requests
    max_latency_ratio: float = 1.5  # candidate p99 <= champion p99 * ratio + slack
    latency_slack_ms: float = 2.0
    max_disagreement: float = 0.2  # share of records where the two predictions differ
    max_prediction_psi: float = 0.25  # PSI of the candidate's predictions against the champion's
    metric_tolerance: float | None = None  # None: 0.01 (bounded metrics) or 10% of the champion's
    min_requests: int = 100  # candidate answers in the step before any guard judges, or it steps
    min_outcomes: int = 100  # outcomes on candidate answers before the metric guard judges

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any] | None) -> Guards:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in (doc or {}).items() if k in known})


@dataclass(frozen=True)
class RolloutPolicy:
    """The contract's ``promotion.rollout`` section: whether promotions roll out (``strategy`` not
    ``none``), the default schedule, the guards."""

    strategy: str = NONE
    schedule: Schedule = DEFAULT_SCHEDULE
    guards: Guards = field(default_factory=Guards)

    @property
    def enabled(self) -> bool:
        return self.strategy != NONE

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "schedule": self.schedule.to_dict(),
            "guards": self.guards.to_dict(),
        }


_POLICY_KEYS = frozenset({"strategy", "canary_percent", "linear_percent", "bake", "guards"})
_GUARD_LIMITS: dict[str, tuple[float, float, bool]] = {  # name: (low, high, integer)
    "max_error_rate": (0.0, 1.0, False),
    "max_latency_ratio": (1.0, 100.0, False),
    "latency_slack_ms": (0.0, 60_000.0, False),
    "max_disagreement": (0.0, 1.0, False),
    "max_prediction_psi": (0.0, 100.0, False),
    "metric_tolerance": (0.0, 1e12, False),
    "min_requests": (1, 10**9, True),
    "min_outcomes": (1, 10**9, True),
}


def parse_rollout_policy(doc: Any) -> RolloutPolicy:
    """Check a contract's ``promotion.rollout`` section; ``ContractError`` naming the field."""
    where = "promotion.rollout"
    if not isinstance(doc, dict):
        raise ContractError(where, "must be a JSON object")
    unknown = sorted(set(doc) - _POLICY_KEYS)
    if unknown:
        raise ContractError(
            f"{where}.{unknown[0]}", f"is not a known field (known: {', '.join(sorted(_POLICY_KEYS))})"
        )
    strategy = doc.get("strategy", NONE)
    if strategy not in (*STRATEGIES, NONE):
        raise ContractError(f"{where}.strategy", f"{strategy!r} is not one of canary, linear, none")
    try:
        canary = _percent(doc.get("canary_percent", 10), "canary_percent")
        linear = _percent(doc.get("linear_percent", 20), "linear_percent")
        bake = parse_duration(doc.get("bake", "15m"), "bake")
    except ValueError as exc:
        name, _, problem = str(exc).partition(": ")
        raise ContractError(f"{where}.{name}", problem) from None
    schedule = Schedule(LINEAR, linear, bake) if strategy == LINEAR else Schedule(CANARY, canary, bake)
    guards_doc = doc.get("guards", {})
    if not isinstance(guards_doc, dict):
        raise ContractError(f"{where}.guards", "must be a JSON object")
    values: dict[str, Any] = {}
    for name, value in guards_doc.items():
        if name not in _GUARD_LIMITS:
            raise ContractError(
                f"{where}.guards.{name}", f"is not a known guard (known: {', '.join(sorted(_GUARD_LIMITS))})"
            )
        if value is None and name == "metric_tolerance":
            continue
        low, high, integer = _GUARD_LIMITS[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ContractError(f"{where}.guards.{name}", f"must be a number, not {value!r}")
        if integer and not float(value).is_integer():
            raise ContractError(f"{where}.guards.{name}", f"must be a whole number, not {value!r}")
        if not low <= value <= high:
            raise ContractError(f"{where}.guards.{name}", f"{value!r} must be between {low:g} and {high:g}")
        values[name] = int(value) if integer else float(value)
    return RolloutPolicy(strategy=strategy, schedule=schedule, guards=Guards(**values))


# --- the rollout and its changes ------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One change of a rollout, as the audit trail keeps it."""

    rollout: str
    revision: int
    action: str
    at: str
    by: str
    reason: str
    share_from: float
    share_to: float
    guard: str | None = None
    figures: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["figures"] = dict(self.figures) if self.figures is not None else None
        return doc


@dataclass(frozen=True)
class Rollout:
    """A rollout's state (the registry's rollout pointer). ``number``: the model's rollouts so far;
    ``revision``: its events so far (every change is conditional on it)."""

    model: str
    number: int
    candidate: int
    champion: int
    schedule: Schedule
    guards: Guards
    status: str
    step: int
    started_at: str
    step_started_at: str
    by: str
    reason: str
    revision: int
    from_status: str
    evaluation: Mapping[str, Any] | None = None
    ended_at: str | None = None
    end_reason: str | None = None

    @property
    def id(self) -> str:
        return f"{self.model}/r{self.number}"

    @property
    def share(self) -> float:
        """The candidate's share of the traffic now (percent): 0 once ended."""
        return self.schedule.steps[self.step] if self.status in RUNNING else 0.0

    @property
    def last_step(self) -> bool:
        return self.step == len(self.schedule.steps) - 1

    def routes_to_candidate(self, key: str) -> bool:
        return routing.to_candidate(self.id, self.share, key)

    def to_dict(self) -> dict[str, Any]:
        """The pointer as stored and as the API shows it (``share`` and ``id`` included, so the predict
        path reads them without this module)."""
        return {
            "id": self.id,
            "model": self.model,
            "number": self.number,
            "candidate": self.candidate,
            "champion": self.champion,
            "schedule": self.schedule.to_dict(),
            "guards": self.guards.to_dict(),
            "status": self.status,
            "step": self.step,
            "share": self.share,
            "started_at": self.started_at,
            "step_started_at": self.step_started_at,
            "by": self.by,
            "reason": self.reason,
            "revision": self.revision,
            "from_status": self.from_status,
            "evaluation": dict(self.evaluation) if self.evaluation is not None else None,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Rollout:
        return cls(
            model=str(doc["model"]),
            number=int(doc["number"]),
            candidate=int(doc["candidate"]),
            champion=int(doc["champion"]),
            schedule=Schedule.from_dict(doc["schedule"]),
            guards=Guards.from_dict(doc.get("guards")),
            status=str(doc["status"]),
            step=int(doc["step"]),
            started_at=str(doc["started_at"]),
            step_started_at=str(doc["step_started_at"]),
            by=str(doc["by"]),
            reason=str(doc["reason"]),
            revision=int(doc["revision"]),
            from_status=str(doc["from_status"]),
            evaluation=doc.get("evaluation"),
            ended_at=doc.get("ended_at"),
            end_reason=doc.get("end_reason"),
        )

    # --- changes: each returns the new state and its event; the registry commits both ------------

    def _event(self, new: Rollout, action: str, at: str, by: str, reason: str, **extra: Any) -> Event:
        return Event(self.id, new.revision, action, at, by, reason, self.share, new.share, **extra)

    def _require(self, allowed: tuple[str, ...], action: str) -> None:
        if self.status not in allowed:
            raise RolloutConflict(
                f"cannot {action} rollout {self.id} ({self.model} v{self.candidate}): it is {self.status}"
                + (f" ({self.end_reason})" if self.end_reason else "")
            )

    def pause(self, at: str, by: str, reason: str) -> tuple[Rollout, Event]:
        self._require((ACTIVE,), PAUSE)
        new = replace(self, status=PAUSED, revision=self.revision + 1)
        return new, self._event(new, PAUSE, at, by, reason)

    def resume(self, at: str, by: str, reason: str) -> tuple[Rollout, Event]:
        """Back to active; the current step's bake starts again (what was seen while paused counts)."""
        self._require((PAUSED,), RESUME)
        new = replace(self, status=ACTIVE, revision=self.revision + 1, step_started_at=at)
        return new, self._event(new, RESUME, at, by, reason)

    def advance(self, at: str, reason: str, evaluation: Mapping[str, Any]) -> tuple[Rollout, Event]:
        """The next step (not past the last: that is ``complete``)."""
        self._require((ACTIVE,), STEP)
        if self.last_step:
            raise RolloutConflict(f"rollout {self.id} is at its last step: it completes, it does not step")
        new = replace(
            self,
            step=self.step + 1,
            step_started_at=at,
            revision=self.revision + 1,
            evaluation=dict(evaluation),
        )
        return new, self._event(new, STEP, at, EVALUATOR, reason, figures=evaluation)

    def complete(self, at: str, reason: str, evaluation: Mapping[str, Any]) -> tuple[Rollout, Event]:
        self._require((ACTIVE,), COMPLETE)
        if not self.last_step:
            raise RolloutConflict(
                f"rollout {self.id} is at step {self.step + 1} of {len(self.schedule.steps)}"
            )
        new = replace(
            self, status=COMPLETED, revision=self.revision + 1, evaluation=dict(evaluation),
            ended_at=at, end_reason=reason,
        )  # fmt: skip
        event = self._event(new, COMPLETE, at, EVALUATOR, reason, figures=evaluation)
        return new, replace(event, share_to=100.0)  # the candidate is the champion: all the traffic

    def abort(
        self,
        at: str,
        by: str,
        reason: str,
        guard: str | None = None,
        evaluation: Mapping[str, Any] | None = None,
    ) -> tuple[Rollout, Event]:
        self._require(RUNNING, ABORT)
        new = replace(
            self, status=ABORTED, revision=self.revision + 1, ended_at=at, end_reason=reason,
            evaluation=dict(evaluation) if evaluation is not None else self.evaluation,
        )  # fmt: skip
        return new, self._event(new, ABORT, at, by, reason, guard=guard, figures=evaluation)

    @property
    def status_after_abort(self) -> str:
        """What the candidate's status becomes when the rollout is aborted."""
        return "retired" if self.from_status == "retired" else "pending_approval"


def start(
    model: str,
    number: int,
    candidate: int,
    champion: int,
    schedule: Schedule,
    guards: Guards,
    at: str,
    by: str,
    reason: str,
    from_status: str,
) -> tuple[Rollout, Event]:
    """A new rollout (the model's ``number``-th) at its first step, and its start event."""
    if candidate == champion:
        raise RolloutConflict(f"{model} v{candidate} is the champion already: nothing to roll out")
    new = Rollout(
        model=model, number=number, candidate=candidate, champion=champion, schedule=schedule, guards=guards,
        status=ACTIVE, step=0, started_at=at, step_started_at=at, by=by, reason=reason, revision=1,
        from_status=from_status,
    )  # fmt: skip
    event = Event(new.id, 1, START, at, by, reason, 0.0, new.share, figures={"schedule": schedule.to_dict()})
    return new, event


# --- what every registry store checks and writes (``Registry.start_rollout`` and the others) -------

POINTER_SK = "rollout"  # the rollout pointer's key beside the champion pointer (DynamoDB: its sort key)
CHANGE_ACTIONS = (STEP, PAUSE, RESUME)  # Registry.change_rollout; abort and complete have their own
_RESULT = {STEP: ACTIVE, PAUSE: PAUSED, RESUME: ACTIVE, ABORT: ABORTED, COMPLETE: COMPLETED}


def event_key(number: int, revision: int) -> str:
    """An event's key in the model's rollout events: ``<number, 6 digits>#<revision, 6 digits>``, so
    the events of all the model's rollouts list oldest first."""
    return f"{number:06d}#{revision:06d}"


def event_record(model: str, number: int, event: Event) -> dict[str, Any]:
    """What a store keeps of an event (the model and the rollout's number beside it)."""
    return {**event.to_dict(), "model": model, "number": number}


def read_pointer(doc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A stored pointer as every store answers it (``Rollout.to_dict``: the same keys, absent ones
    None, shares as floats), whatever the store dropped or turned into ints."""
    return Rollout.from_dict(doc).to_dict() if doc else None


def read_event(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A stored event as every store answers it (the keys of ``event_record``, absent ones None)."""
    out = {k: v for k, v in doc.items() if k not in ("pk", "sk")}
    out.setdefault("guard", None)
    out.setdefault("figures", None)
    out["share_from"], out["share_to"] = float(out["share_from"]), float(out["share_to"])
    return out


def _check_event(new: Rollout, event: Event, actions: tuple[str, ...]) -> None:
    if event.action not in actions:
        raise ValueError(f"event: {event.action!r} is not a change this call makes ({', '.join(actions)})")
    if event.rollout != new.id or event.revision != new.revision:
        raise ValueError(
            f"event: it is {event.rollout} revision {event.revision}, the rollout {new.id} revision {new.revision}"
        )
    states.check_finite(event.to_dict(), "event")
    states.check_finite(new.to_dict(), "rollout")


def check_start(
    new: Rollout,
    event: Event,
    expected_status: str,
    pointer: Mapping[str, Any] | None,
    champion: int | None,
    doc: Mapping[str, Any] | None,
) -> None:
    """What a store checks before it starts ``new`` from what it read: the model's rollout pointer
    (None: never one), its champion, the candidate's record. Raises what a lost race raises too:
    ``RolloutConflict`` (a rollout running, or another one started since), ``PromotionConflict``
    (the champion is not the rollout's), ``StatusConflict`` (the candidate is not
    ``expected_status``, or tainted), ``NotFound`` (no such version)."""
    _check_event(new, event, (START,))
    if new.status != ACTIVE or new.revision != 1 or new.step != 0:
        raise ValueError(f"rollout: {new.id} must start active at its first step, revision 1")
    if expected_status not in states.ROLLOUT_SOURCES or new.from_status != expected_status:
        raise ValueError(
            f"expected_status: a rollout starts from {', '.join(states.ROLLOUT_SOURCES)} "
            f"(and as the rollout's from_status, {new.from_status}), not {expected_status}"
        )
    check_next_number(new.model, new.number, pointer)
    if champion != new.champion:
        raise states.PromotionConflict(new.model, new.champion, champion, new.candidate)
    if doc is None:
        raise states.not_registered(new.model, new.candidate)
    if doc["status"] != expected_status:
        raise states.StatusConflict(
            f"cannot roll out {new.model} v{new.candidate}: it is {doc['status']}, expected {expected_status}"
        )
    states.check_untainted(new.model, new.candidate, doc)


def check_next_number(model: str, number: int, pointer: Mapping[str, Any] | None) -> None:
    """``RolloutConflict`` unless a rollout numbered ``number`` may start after ``pointer`` (None:
    the first; else the previous one, ended)."""
    states.check_no_rollout(model, pointer)
    last = int(pointer["number"]) if pointer else 0
    if number != last + 1:
        raise RolloutConflict(
            f"{model}'s last rollout is r{last}: the next is r{last + 1}, not r{number}; read it again"
        )


def start_moves(expected_status: str, at: str, by: str, reason: str) -> list[dict[str, Any]]:
    """The transitions a rollout's start appends to its candidate: through ``approved`` unless it is
    approved already or a former champion (every champion has an approval in its transitions)."""
    approval = (
        []
        if expected_status in (states.APPROVED, states.RETIRED)
        else [states.transition(expected_status, states.APPROVED, at, by, reason)]
    )
    source = states.RETIRED if expected_status == states.RETIRED else states.APPROVED
    return [*approval, states.transition(source, states.ROLLING_OUT, at, by, reason)]


def check_change(
    new: Rollout, event: Event, pointer: Mapping[str, Any] | None, actions: tuple[str, ...]
) -> None:
    """What a store checks before it replaces ``pointer`` with ``new``: the event fits, and the
    pointer is the one ``new`` was made from (same rollout, ``revision`` one less), else
    ``RolloutConflict`` (someone else changed it: read it again)."""
    _check_event(new, event, actions)
    expected = _RESULT[event.action]
    if new.status != expected:
        raise ValueError(f"rollout: a {event.action} makes {new.id} {expected}, not {new.status}")
    if pointer is None or int(pointer["number"]) != new.number:
        raise RolloutConflict(f"{new.model} has no rollout r{new.number} running: read it again")
    if int(pointer["revision"]) != new.revision - 1:
        raise RolloutConflict(
            f"rollout {new.id} changed meanwhile (it is {pointer['status']} at revision {pointer['revision']}, "
            f"this change was made from revision {new.revision - 1}): read it again and decide anew"
        )


def completion(new: Rollout, event: Event) -> states.Promotion:
    """The champion change a rollout's completion makes: the same as any promotion's."""
    return states.Promotion(
        new.model,
        new.candidate,
        event.by,
        f"rollout {new.id} completed: {event.reason}",
        expected=new.champion,
        rollout=new.id,
    )
