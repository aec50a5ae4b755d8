"""The rollout guards: the candidate's captured answers against the champion's on the same requests
(pure: records, outcomes and the rollout in, plain JSON figures and a decision out).

**Pairing.** During a rollout a request routed to the candidate is answered by it (a record of role
``canary``, version = the candidate) and scored by the champion too (role ``shadow``, version = the
champion); when the candidate fails, the champion answers (role ``champion``) beside the candidate's
failure (``chalicelib.serving.predict``). A *pair* is a candidate record and the champion's record
with the same ``(request_id, index)``: both models judged on the same input. Records of other
versions or roles, and candidate records without the champion's beside them (the champion's shadow
was not captured), are not paired. A record captured twice (a retried delivery) counts once.

**Figures** (``figures``), one per guard, each ``{"value", "limit", "breached", "n", "status"}``
(``status``: ``ok``, ``breach`` or ``insufficient``; ``value``/``limit`` None when not computed), plus
what the guard compared:

* ``error_rate``: the candidate's failures (status ``invalid`` or ``error``: it refused records or
  failed) minus the champion's failures, as a share of the pairs; pairs that both refused as
  ``invalid`` are left out (the client sent records no model takes: that says nothing of the
  candidate). ``limit``: ``Guards.max_error_rate``. Also ``candidate`` and ``champion`` (each side's
  failure share).
* ``latency_p99``: the 99th percentile of the candidate's request latency (the scoring time a
  capture record carries, per request) over the pairs both answered, against ``limit`` = the
  champion's p99 on the same requests x ``max_latency_ratio`` + ``latency_slack_ms``. ``n``:
  requests. Also ``champion`` (its p99) and ``bound``: the p99's one-sided lower confidence bound
  (``quantile_lower_bound`` at ``CONFIDENCE``), which must be beyond the limit to breach: a p99 of a
  hundred requests is their second-slowest, and one pause of a busy machine would abort a release
  as fast as the champion (``make bench-rollout`` saw it).
* ``disagreement``: the share of the pairs both answered on which the predictions differ: the class
  label, for a classifier; for a regressor, ``|candidate - champion| > max(1e-6, 0.1 x |champion|)``
  (10% of the champion's value, or a millionth near zero: a retrained regressor never gives the
  same number, but rarely moves one by a tenth). ``limit``: ``max_disagreement``.
* ``prediction_psi``: the population stability index (``chalicelib.validation.drift.psi``) of the
  candidate's predictions against the champion's on the pairs both answered: over the classes
  either predicted (a classifier), or over the deciles of the champion's values (a regressor; edges
  ``drift.quantile_edges``). A candidate collapsing to one class, or shifting its values, moves it
  even when most labels agree. ``limit``: ``max_prediction_psi``.
* ``metric``: the primary metric (``chalicelib.registry.metrics``) of both answers of each pair
  judged by the same outcome (``chalicelib.monitoring.join``: the candidate's answer is the one
  given, so the outcome joins it; the champion's answer is judged by the same label). Judged once
  ``Guards.min_outcomes`` pairs have outcomes. The candidate may be worse than the champion by the
  tolerance (``Guards.metric_tolerance``; None: what the monitor's default floor allows,
  ``chalicelib.monitoring.performance.default_floor``: 0.01 for bounded metrics, 10% of the
  champion's value for rmse, mae, log_loss); ``limit`` is the champion's value made worse by it.
  Noise is not a breach: a paired bootstrap (``BOOTSTRAP_SAMPLES`` resamples of the pairs, seeded)
  gives the candidate-minus-champion difference's one-sided bound at ``CONFIDENCE``; the guard
  breaches when even that bound (the candidate's best plausible showing) is beyond the tolerance.
  Also ``metric``, ``champion`` (its value), ``bound`` (the champion's value + the bound of the
  difference) and ``confidence``.

**Enough evidence.** Below ``Guards.min_requests`` pairs every guard is ``insufficient``: no breach,
and the rollout does not step. One exception: the error guard breaches earlier when the candidate's
excess failures (its failures minus the champion's) already exceed ``max_error_rate x
min_requests``: the share would be over the limit at the smallest sample a step is judged on, so a
candidate failing at once is stopped without serving the rest of that sample.

**Decisions** (``decide``): ``abort`` on any breach (a paused rollout too: paused means not stepping,
not unguarded), naming the first breached guard (in ``GUARDS`` order) and the figures of each
breached one; otherwise ``hold`` while the rollout is paused, its step has baked less than
``Schedule.bake_s`` since ``step_started_at``, or fewer than ``min_requests`` pairs were seen; then
``complete`` at the last step (100%), else ``step``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np

from chalicelib.capture.policy import PerformanceRule
from chalicelib.monitoring.join import OutcomeLike, Pair, join, label_key
from chalicelib.monitoring.performance import default_floor, truth_and_scores
from chalicelib.registry import metrics
from chalicelib.registry.rollout import PAUSED, RUNNING, Guards, Rollout
from chalicelib.validation import drift

GUARDS = ("error_rate", "latency_p99", "disagreement", "prediction_psi", "metric")
ABORT, STEP, COMPLETE, HOLD = "abort", "step", "complete", "hold"
OK, BREACH, INSUFFICIENT = "ok", "breach", "insufficient"
CANDIDATE_ROLES = frozenset({"canary"})
CHAMPION_ROLES = frozenset({"shadow", "champion"})
REGRESSION_RELATIVE = 0.1  # a regressor's predictions differ beyond 10% of the champion's value
REGRESSION_ABSOLUTE = 1e-6  # ... or a millionth, near zero
PSI_BINS = 10  # deciles of the champion's values (a regressor)
CONFIDENCE = 0.95
BOOTSTRAP_SAMPLES = 1000
OUTCOME_HORIZON = timedelta(hours=168)  # the monitor's default: outcomes later than this are not joined


@dataclass(frozen=True)
class Judged:
    """What the figures need to know of the model beyond the records: its task, its primary metric
    and the metric's direction (from the candidate's registry record)."""

    task: str  # "classification" or "regression"
    metric: str | None = None
    greater_is_better: bool = True


class Decision(NamedTuple):
    """What the evaluator does with a rollout: ``action`` (``abort``, ``step``, ``complete``,
    ``hold``), the guard that decided an abort (None otherwise), and the reason (for the audit)."""

    action: str
    guard: str | None
    reason: str


@dataclass(frozen=True)
class Paired:
    """The candidate's record and the champion's for one input."""

    candidate: Mapping[str, Any]
    champion: Mapping[str, Any]

    @property
    def both_answered(self) -> bool:
        return self.candidate.get("status") == "ok" and self.champion.get("status") == "ok"


def _key(record: Mapping[str, Any]) -> tuple[str, int]:
    index = record.get("index")
    return str(record.get("request_id")), index if isinstance(index, int) else -1


def _version(record: Mapping[str, Any]) -> int | None:
    version = record.get("version")
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def pair_records(records: Iterable[Mapping[str, Any]], candidate: int, champion: int) -> list[Paired]:
    """The pairs of the rule above, ordered by ``(request_id, index)`` (the order records are read in
    never matters)."""
    ours: dict[tuple[str, int], Mapping[str, Any]] = {}
    theirs: dict[tuple[str, int], Mapping[str, Any]] = {}
    for record in records:
        version, role = _version(record), record.get("role")
        if version == candidate and role in CANDIDATE_ROLES:
            side = ours
        elif version == champion and role in CHAMPION_ROLES:
            side = theirs
        else:
            continue
        key = _key(record)
        # A record captured twice is one record; of two that differ (never seen), the one first in a
        # fixed order of their content, so the pairing never depends on the order of a listing.
        if key not in side or _order(record) < _order(side[key]):
            side[key] = record
    return [Paired(ours[key], theirs[key]) for key in sorted(ours.keys() & theirs.keys())]


def _order(record: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(record.get("time")), str(record.get("status")), repr(record.get("prediction")))


# --- the figures --------------------------------------------------------------------------------------


def _figure(
    value: float | None, limit: float | None, n: int, judged: bool, breached: bool, **extra: Any
) -> dict[str, Any]:
    status = BREACH if breached else OK if judged else INSUFFICIENT
    return {
        "value": _plain(value),
        "limit": _plain(limit),
        "breached": breached,
        "n": n,
        "status": status,
        **{k: _plain(v) if isinstance(v, float) else v for k, v in extra.items()},
    }


def _plain(value: float | None) -> float | None:
    """A JSON-safe number (no NaN or infinity: the figures are stored and shown), rounded."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 6)


def _failed(record: Mapping[str, Any]) -> bool:
    return record.get("status") != "ok"


def error_figure(pairs: Sequence[Paired], guards: Guards) -> dict[str, Any]:
    counted = [
        p
        for p in pairs
        if not (p.candidate.get("status") == "invalid" and p.champion.get("status") == "invalid")
    ]
    n = len(counted)
    ours = sum(1 for p in counted if _failed(p.candidate))
    theirs = sum(1 for p in counted if _failed(p.champion))
    value = (ours - theirs) / n if n else None
    enough = len(pairs) >= guards.min_requests
    at_once = not enough and ours - theirs > guards.max_error_rate * guards.min_requests
    breached = at_once or (enough and value is not None and value > guards.max_error_rate)
    return _figure(
        value, guards.max_error_rate, n, enough or at_once, breached,
        candidate=ours / n if n else None, champion=theirs / n if n else None,
    )  # fmt: skip


def _request_latencies(records: Iterable[Mapping[str, Any]]) -> list[float]:
    """One latency per request (its records share the request's scoring time)."""
    seen: dict[str, float] = {}
    for record in records:
        latency = _number(record.get("latency_ms"))
        request = str(record.get("request_id"))
        if request not in seen and latency is not None:
            seen[request] = latency
    return list(seen.values())


def latency_figure(pairs: Sequence[Paired], guards: Guards) -> dict[str, Any]:
    answered = [p for p in pairs if p.both_answered]
    ours = _request_latencies(p.candidate for p in answered)
    theirs = _request_latencies(p.champion for p in answered)
    enough = len(pairs) >= guards.min_requests and bool(ours) and bool(theirs)
    if not ours or not theirs:
        return _figure(None, None, len(ours), False, False, champion=None)
    value = float(np.percentile(ours, 99))
    champion = float(np.percentile(theirs, 99))
    limit = champion * guards.max_latency_ratio + guards.latency_slack_ms
    bound = quantile_lower_bound(ours, 0.99, CONFIDENCE)
    return _figure(value, limit, len(ours), enough, enough and bound > limit, champion=champion, bound=bound)


def quantile_lower_bound(values: Sequence[float], q: float, confidence: float) -> float:
    """A one-sided lower confidence bound of the ``q`` quantile: the k-th smallest value, for the
    largest k with P(Binomial(n, q) >= k) >= ``confidence`` (distribution-free: the k-th order
    statistic lies below the quantile at least that often). Of 100 requests at 95%, the 97th
    slowest: a p99 is judged beyond its limit only when four requests are, so one or two pauses of
    a busy machine (a garbage collection, a neighbour's burst) never abort a release."""
    ordered = sorted(values)
    n = len(ordered)
    log_q, log_rest = math.log(q), math.log1p(-q)
    tail, k = 0.0, 1
    for j in range(n, 0, -1):  # P(B = j), from the top, until the tail reaches the confidence
        tail += math.exp(
            math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * log_q + (n - j) * log_rest
        )
        if tail >= confidence:
            k = j
            break
    return float(ordered[k - 1])


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _differ(ours: Any, theirs: Any, task: str) -> bool:
    if task == "regression":
        a, b = _number(ours), _number(theirs)
        if a is None or b is None:
            return a is not b  # an unreadable value on one side only differs
        return abs(a - b) > max(REGRESSION_ABSOLUTE, REGRESSION_RELATIVE * abs(b))
    return label_key(ours) != label_key(theirs)


def disagreement_figure(pairs: Sequence[Paired], guards: Guards, task: str) -> dict[str, Any]:
    answered = [p for p in pairs if p.both_answered]
    n = len(answered)
    differ = sum(
        1 for p in answered if _differ(p.candidate.get("prediction"), p.champion.get("prediction"), task)
    )
    value = differ / n if n else None
    enough = len(pairs) >= guards.min_requests and n > 0
    return _figure(
        value,
        guards.max_disagreement,
        n,
        enough,
        enough and value is not None and value > guards.max_disagreement,
    )


def prediction_psi(ours: Sequence[Any], theirs: Sequence[Any], task: str) -> float | None:
    """PSI of the candidate's predictions (``ours``) against the champion's (``theirs``), None when
    there is nothing to compare."""
    if task == "regression":
        a = np.asarray([v for v in map(_number, ours) if v is not None], dtype=np.float64)
        b = np.asarray([v for v in map(_number, theirs) if v is not None], dtype=np.float64)
        if a.size == 0 or b.size == 0:
            return None
        edges = drift.quantile_edges(b, PSI_BINS)
        return drift.psi(drift.bin_fractions(b, edges), drift.bin_fractions(a, edges))
    if not ours or not theirs:
        return None
    classes = sorted({label_key(v) for v in ours} | {label_key(v) for v in theirs})
    column = {name: i for i, name in enumerate(classes)}
    counts = np.zeros((2, len(classes)))
    for row, values in enumerate((theirs, ours)):
        for value in values:
            counts[row, column[label_key(value)]] += 1
    fractions = counts / counts.sum(axis=1, keepdims=True)
    return drift.psi(fractions[0], fractions[1])


def psi_figure(pairs: Sequence[Paired], guards: Guards, task: str) -> dict[str, Any]:
    answered = [p for p in pairs if p.both_answered]
    value = prediction_psi(
        [p.candidate.get("prediction") for p in answered],
        [p.champion.get("prediction") for p in answered],
        task,
    )
    enough = len(pairs) >= guards.min_requests and value is not None
    breached = enough and value is not None and value > guards.max_prediction_psi
    return _figure(value, guards.max_prediction_psi, len(answered), enough, breached)


def metric_figure(
    pairs: Sequence[Paired],
    guards: Guards,
    judged: Judged,
    outcomes: Sequence[OutcomeLike],
    horizon: timedelta = OUTCOME_HORIZON,
    seed: int = 0,
) -> dict[str, Any]:
    metric = judged.metric
    none = {"metric": metric, "champion": None, "bound": None, "confidence": CONFIDENCE}
    answered = {_key(p.candidate): p for p in pairs if p.both_answered}
    if not metric or not outcomes or not answered:
        return _figure(None, None, 0, False, False, **none)
    joined = join([p.candidate for p in answered.values()], outcomes, horizon).pairs
    ours = list(joined)
    theirs = [Pair(answered[_key(pair.record)].champion, pair.outcome) for pair in joined]
    n = len(ours)
    if n < guards.min_outcomes or len(pairs) < guards.min_requests:
        return _figure(None, None, n, False, False, **none)
    try:
        candidate_metric = metrics.prepare(metric, *truth_and_scores(ours, judged.task))
        champion_metric = metrics.prepare(metric, *truth_and_scores(theirs, judged.task))
    except ValueError:  # a metric these answers cannot give (no probabilities): not judged
        return _figure(None, None, n, False, False, **none)
    value = float(candidate_metric(np.ones((1, n)))[0])
    champion = float(champion_metric(np.ones((1, n)))[0])
    if not (math.isfinite(value) and math.isfinite(champion)):
        return _figure(None, None, n, False, False, **none)
    rule = PerformanceRule(tolerance=guards.metric_tolerance)
    limit = default_floor(champion, rule, judged.greater_is_better, metric)
    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=BOOTSTRAP_SAMPLES)
    differences = candidate_metric(weights.astype(np.float64)) - champion_metric(weights.astype(np.float64))
    differences = differences[np.isfinite(differences)]
    if differences.size == 0:
        return _figure(value, limit, n, False, False, **{**none, "champion": champion})
    # The candidate's best plausible showing: the upper bound of the difference for a metric where
    # higher is better, the lower bound where lower is.
    q = CONFIDENCE if judged.greater_is_better else 1.0 - CONFIDENCE
    bound = champion + float(np.quantile(differences, q))
    breached = bound < limit if judged.greater_is_better else bound > limit
    return _figure(
        value, limit, n, True, breached, metric=metric, champion=champion, bound=bound, confidence=CONFIDENCE
    )


def figures(
    records: Iterable[Mapping[str, Any]],
    rollout: Rollout,
    judged: Judged,
    outcomes: Sequence[OutcomeLike] = (),
    horizon: timedelta = OUTCOME_HORIZON,
) -> dict[str, Any]:
    """The guards' figures over the captured records (and the outcomes received for them)::

        {"candidate": 2, "champion": 1, "candidate_records": 130, "paired": 128,
         "min_requests": 100, "sufficient": true,
         "guards": {"error_rate": {"value", "limit", "breached", "n", "status", ...}, ...}}

    Plain JSON (no NaN: a figure not computed is None)."""
    records = list(records)
    guards = rollout.guards
    pairs = pair_records(records, rollout.candidate, rollout.champion)
    canary = {
        _key(r) for r in records if _version(r) == rollout.candidate and r.get("role") in CANDIDATE_ROLES
    }
    return {
        "candidate": rollout.candidate,
        "champion": rollout.champion,
        "candidate_records": len(canary),
        "paired": len(pairs),
        "min_requests": guards.min_requests,
        "sufficient": len(pairs) >= guards.min_requests,
        "guards": {
            "error_rate": error_figure(pairs, guards),
            "latency_p99": latency_figure(pairs, guards),
            "disagreement": disagreement_figure(pairs, guards, judged.task),
            "prediction_psi": psi_figure(pairs, guards, judged.task),
            "metric": metric_figure(pairs, guards, judged, outcomes, horizon, seed=rollout.number),
        },
    }


# --- the decision -------------------------------------------------------------------------------------


def _num(value: Any, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def describe(name: str, figure: Mapping[str, Any]) -> str:
    """One guard's figures in words (the audit reason and the notification name them)."""
    value, limit, n = figure.get("value"), figure.get("limit"), figure.get("n")
    if name == "error_rate":
        return (
            f"error_rate {_num(value)} (candidate failed {_num(figure.get('candidate'))}, champion "
            f"{_num(figure.get('champion'))} of {n} records; limit {_num(limit)})"
        )
    if name == "latency_p99":
        return (
            f"latency_p99 {_num(value)} ms over {n} requests (champion {_num(figure.get('champion'))} ms; "
            f"limit {_num(limit)} ms)"
        )
    if name == "metric":
        return (
            f"metric {figure.get('metric')} {_num(value)} on {n} outcomes (champion "
            f"{_num(figure.get('champion'))}, candidate's {CONFIDENCE:.0%} bound {_num(figure.get('bound'))}; "
            f"limit {_num(limit)})"
        )
    return f"{name} {_num(value)} on {n} records (limit {_num(limit)})"


def moment(text: str) -> datetime:
    """A stored instant (ISO 8601; UTC when it names no zone) as an aware datetime."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def decide(rollout: Rollout, found: Mapping[str, Any], now: datetime) -> Decision:
    """What to do with the rollout given its figures (the rule in the module docstring)."""
    if rollout.status not in RUNNING:
        return Decision(HOLD, None, f"rollout {rollout.id} is {rollout.status}: nothing to decide")
    guards = found.get("guards") or {}
    breached = [name for name in GUARDS if (guards.get(name) or {}).get("breached")]
    if breached:
        words = "; ".join(describe(name, guards[name]) for name in breached)
        return Decision(
            ABORT,
            breached[0],
            f"guard {breached[0]} breached: {words} (candidate v{rollout.candidate} against champion "
            f"v{rollout.champion})",
        )
    steps = rollout.schedule.steps
    where = f"step {rollout.step + 1} of {len(steps)} ({steps[rollout.step]:g}%)"
    if rollout.status == PAUSED:
        return Decision(HOLD, None, f"{where} is paused: guarded, never stepped")
    baked = (now - moment(rollout.step_started_at)).total_seconds()
    if baked < rollout.schedule.bake_s:
        return Decision(HOLD, None, f"{where} baking: {baked:.0f} of {rollout.schedule.bake_s} s")
    paired, needed = int(found.get("paired") or 0), rollout.guards.min_requests
    if paired < needed:
        return Decision(
            HOLD,
            None,
            f"{where}: {paired} paired candidate records of the {needed} a step needs (insufficient)",
        )
    judged = ", ".join(
        describe(name, guards[name]) for name in GUARDS if (guards.get(name) or {}).get("status") == OK
    )
    if rollout.last_step:
        return Decision(
            COMPLETE,
            None,
            f"{where} baked {baked:.0f} s on {paired} paired records, no guard breached: {judged}",
        )
    return Decision(
        STEP,
        None,
        f"{where} baked {baked:.0f} s on {paired} paired records, no guard breached: {judged}; "
        f"next {steps[rollout.step + 1]:g}%",
    )


__all__ = [
    "ABORT",
    "COMPLETE",
    "GUARDS",
    "HOLD",
    "STEP",
    "Decision",
    "Judged",
    "Paired",
    "decide",
    "describe",
    "figures",
    "pair_records",
]
