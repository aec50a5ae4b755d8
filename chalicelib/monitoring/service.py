"""The monitor: per model and closed window, the window report; then the breaches it sustains.

``run_monitor`` runs on a schedule (the ``monitor_models`` function, hourly) and is safe to run at
any time, again, or twice at once:

1. For every model with a champion and a contract (whose ``monitoring.capture`` is on), the windows
   of ``monitoring.window_minutes`` that have closed since the last report (at most ``LOOKBACK``
   back, at most ``MAX_WINDOWS`` per run) are reported: the captured records of the window
   (``CaptureSource``) against the champion's training reference (``chalicelib.monitoring.window``).
2. Outcomes arrive later. A window's performance (``chalicelib.monitoring.performance``) joins its
   records with the outcomes received from its start until ``outcome_horizon_hours`` after its end
   (``chalicelib.monitoring.join``: first outcome wins, later ones counted as duplicates or
   conflicts). A reported window still within the horizon is reported again when outcomes were
   received since its report (``outcomes_as_of``): late labels raise the coverage of the windows
   they belong to, never of the window they arrive in.
3. ``sustained_breaches`` over the latest reports: each breach is recorded create-only (the
   monitoring audit trail, ``MonitoringStore.add_breach``; a rerun records nothing twice). A breach
   that starts a run (no breach of its kind recorded for the window before) is announced
   (``Model monitoring breach``) and, when ``monitoring.retrain`` is on, sent to the retrain queue as
   a trigger of kind ``monitor``: the retrain policy, cooldown and single-flight lock decide.
4. Each report's figures are emitted as metrics (``MonitorPorts.emit``: EMF in Lambda), which the
   alarms watch.

Reports are computed from what is stored: the same records, outcomes and reference give the same
report (bootstrap seeded by the window), so rerunning changes nothing but ``computed_at``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from chalicelib import notify
from chalicelib.capture.policy import MonitoringPolicy
from chalicelib.capture.ports import CaptureSource
from chalicelib.errors import MonitoringError, NotFound
from chalicelib.monitoring.breach import sustained_breaches
from chalicelib.monitoring.join import join
from chalicelib.monitoring.performance import default_floor, performance_report
from chalicelib.monitoring.ports import OutcomeStore
from chalicelib.monitoring.store import MonitoringStore, parse_stamp, stamp
from chalicelib.monitoring.window import reference_predictions, window_report
from chalicelib.registry.ports import ContractReader
from chalicelib.serving.model import fetch_artifact, load_registered
from chalicelib.serving.ports import ArtifactReader, RegistryReader
from chalicelib.training.messages import monitor_breach_message
from chalicelib.validation.contract import Contract
from chalicelib.validation.ports import Queue

LOOKBACK = timedelta(hours=24)  # a first run (or one after an outage) reports at most this far back
MAX_WINDOWS = 48  # windows (re)computed per model per run; the rest wait for the next run
# The answers given: a window's version is the one that gave most of them.
SCORED_ROLES = ("champion", "canary", "pinned", "batch")


class MonitoredRegistry(RegistryReader, Protocol):
    def models(self) -> list[str]: ...


@dataclass
class MonitorPorts:
    registry: MonitoredRegistry
    contracts: ContractReader
    artifacts: ArtifactReader
    capture: CaptureSource
    outcomes: OutcomeStore
    store: MonitoringStore
    retrain: Queue  # the retrain queue
    notifier: notify.Notifier
    emit: Callable[[str, dict[str, Any]], None] = field(default=lambda model, report: None)


def floor_window(moment: datetime, minutes: int) -> datetime:
    """The start of the window holding ``moment`` (windows are aligned to midnight UTC)."""
    moment = moment.astimezone(UTC)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = int((moment - midnight).total_seconds() // 60)
    return midnight + timedelta(minutes=elapsed - elapsed % minutes)


def run_monitor(ports: MonitorPorts, now: datetime, models: Sequence[str] | None = None) -> dict[str, Any]:
    """Report every closed window not yet reported (and those late outcomes changed), then act on the
    breaches they sustain. Returns, per model, what was done (or why it was skipped).

    One model's failure (a contract no longer valid, a damaged artifact, an AWS error) does not keep
    the others from being monitored: each is tried, then ``MonitorFailed`` names the ones that failed
    (the function's error alarm fires; the next run tries them again)."""
    done: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for model in models if models is not None else ports.registry.models():
        try:
            done[model] = monitor_model(ports, model, now)
        except NotFound as exc:
            done[model] = {"skipped": str(exc)}
        except Exception as exc:
            failed[model] = f"{type(exc).__name__}: {exc}"[:500]
            done[model] = {"failed": failed[model]}
    if failed:
        raise MonitorFailed(done, failed)
    return done


class MonitorFailed(MonitoringError):
    """Some models could not be monitored this run; ``done`` has what happened to every model."""

    def __init__(self, done: dict[str, Any], failed: dict[str, str]) -> None:
        super().__init__("; ".join(f"{model}: {why}" for model, why in sorted(failed.items())))
        self.done = done
        self.failed = failed


def monitor_model(ports: MonitorPorts, model: str, now: datetime) -> dict[str, Any]:
    champion = ports.registry.champion(model)
    if champion is None:
        return {"skipped": "no champion"}
    contract = ports.contracts.get(model)
    policy = MonitoringPolicy.from_contract(contract)
    if not policy.capture:
        return {"skipped": "monitoring.capture is off"}
    width = timedelta(minutes=policy.window_minutes)
    horizon = timedelta(hours=policy.outcome_horizon_hours)
    closed = floor_window(now, policy.window_minutes)  # windows before this one have closed
    since = floor_window(now - max(LOOKBACK, horizon + width), policy.window_minutes)
    reports = {r["window"]: r for r in ports.store.windows(model, since, closed)}
    # Outcomes received since the oldest report that could still take some: one listing, no reads.
    open_reports = [r for k, r in reports.items() if parse_stamp(k) + width + horizon > _as_of(r)]
    arrivals = ports.outcomes.arrivals(model, min(map(_as_of, open_reports)), now) if open_reports else []
    due: list[datetime] = []
    start = since
    while start < closed:
        report = reports.get(stamp(start))
        if report is None:
            if start >= floor_window(now - LOOKBACK, policy.window_minutes):
                due.append(start)
        elif _outcomes_changed(report, arrivals, start + width + horizon):
            due.append(start)
        start += width
    due = due[-MAX_WINDOWS:]
    context = _Context(ports, model, contract, policy, now)
    for start in due:
        report = context.report(start, start + width)
        ports.store.put_window(model, report)
        reports[report["window"]] = report
        ports.emit(model, report)
    acted = _act_on_breaches(ports, model, policy, closed, width, now)
    return {"reported": [stamp(s) for s in due], "breaches": acted}


def _as_of(report: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(report.get("outcomes_as_of") or report.get("computed_at")))


def _outcomes_changed(
    report: Mapping[str, Any], arrivals: Sequence[datetime], joinable_until: datetime
) -> bool:
    """Whether outcomes this window could join were received since its report."""
    as_of = _as_of(report)
    return any(as_of <= moment < joinable_until for moment in arrivals)


class _Context:
    """What one model's reports share within a run: its contract, policy and champions' references."""

    def __init__(
        self, ports: MonitorPorts, model: str, contract: Contract, policy: MonitoringPolicy, now: datetime
    ) -> None:
        self.ports, self.model, self.contract, self.policy, self.now = ports, model, contract, policy, now
        self._docs: dict[int, dict[str, Any] | None] = {}
        self._profiles: dict[int, dict[str, Any]] = {}
        self._predictions: dict[int, dict[str, Any] | None] = {}

    def doc(self, version: int) -> dict[str, Any] | None:
        if version not in self._docs:
            self._docs[version] = self.ports.registry.version(self.model, version)
        return self._docs[version]

    def reference_profile(self, version: int) -> dict[str, Any]:
        if version not in self._profiles:
            doc = self.doc(version) or {}
            label = f"{self.model} v{version}"
            self._profiles[version] = json.loads(
                fetch_artifact(self.ports.artifacts, doc, "reference_profile.json", label)
            )
        return self._profiles[version]

    def reference_predictions(self, version: int) -> dict[str, Any] | None:
        """The version's predictions on its holdout (computed once per version, then stored)."""
        if version in self._predictions:
            return self._predictions[version]
        found = self.ports.store.reference(self.model, version)
        if found is None:
            found = holdout_reference(
                self.ports.artifacts, self.doc(version) or {}, f"{self.model} v{version}"
            )
            if found is not None:
                self.ports.store.put_reference(self.model, version, found)
        self._predictions[version] = found
        return found

    def report(self, start: datetime, end: datetime) -> dict[str, Any]:
        records = list(self.ports.capture.records(self.model, start, end))
        scored = [r for r in records if r.get("role") in SCORED_ROLES]
        served = Counter(int(r["version"]) for r in scored if r.get("version") is not None)
        version = (
            served.most_common(1)[0][0] if served else int(self.ports.registry.champion(self.model) or 0)
        )
        report = window_report(
            records,
            contract=self.contract,
            policy=self.policy,
            reference_profile=self.reference_profile(version),
            reference_predictions=self.reference_predictions(version),
            start=start,
            end=end,
        )
        horizon = timedelta(hours=self.policy.outcome_horizon_hours)
        outcomes = list(self.ports.outcomes.received(self.model, start, min(self.now, end + horizon)))
        joined = join(records, outcomes, horizon)
        doc = self.doc(version) or {}
        metric = str(doc.get("primary_metric") or "")
        report["performance"] = (
            performance_report(
                joined,
                task=self.contract.task,
                metric=metric,
                greater_is_better=bool((doc.get("training_metrics") or {}).get("greater_is_better", True)),
                floor=default_floor(_holdout_value(doc), self.policy.performance, _greater(doc), metric),
                rule=self.policy.performance,
                seed=int(start.timestamp()) // 60,
            )
            if metric and (self.policy.performance.floor is not None or not math.isnan(_holdout_value(doc)))
            else {"verdict": "insufficient_data", "reason": f"v{version} records no primary metric value"}
        )
        report.update(
            {
                "model": self.model,
                "window": stamp(start),
                "version": version,
                "computed_at": self.now.isoformat(),
                "outcomes_as_of": self.now.isoformat(),
            }
        )
        return report


def _greater(doc: Mapping[str, Any]) -> bool:
    return bool((doc.get("training_metrics") or {}).get("greater_is_better", True))


def _holdout_value(doc: Mapping[str, Any]) -> float:
    """The version's holdout value of its primary metric (NaN when it records none: no default floor)."""
    value = doc.get("primary_value")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def holdout_reference(artifacts: ArtifactReader, doc: Mapping[str, Any], label: str) -> dict[str, Any] | None:
    """The version's predictions on its own holdout rows: what its live predictions should look like
    (None when it has no holdout with rows it can score)."""
    from chalicelib.registry.scoring import withheld_features

    if not (doc.get("artifacts") or {}).get("holdout.csv"):
        return None
    session = load_registered(artifacts, doc, label)
    reader = csv.reader(io.StringIO(fetch_artifact(artifacts, doc, "holdout.csv", label).decode("utf-8")))
    header = next(reader, [])
    rows = [row for row in reader if row]
    if not rows:
        return None
    schema = session.schema
    feed = schema.encode_text(header, rows, withheld_features(schema, header))
    scores = session.run(feed)
    if scores.labels is not None:
        predictions: list[Any] = [v.item() if hasattr(v, "item") else v for v in scores.labels.tolist()]
    else:
        assert scores.predictions is not None
        predictions = [float(v) for v in scores.predictions.tolist()]
    return reference_predictions(predictions)


def _act_on_breaches(
    ports: MonitorPorts,
    model: str,
    policy: MonitoringPolicy,
    closed: datetime,
    width: timedelta,
    now: datetime,
) -> list[dict[str, Any]]:
    longest = max(policy.drift.persistence, policy.quality.persistence, policy.performance.persistence)
    recent = ports.store.windows(model, closed - width * (longest + 1), closed)
    acted = []
    for breach in sustained_breaches(recent, policy):
        # Windows by name, as the reports' keys have them.
        breach = {**breach, "windows": [stamp(parse_stamp(str(w))) for w in breach["windows"]]}
        record = {**breach, "model": model, "recorded_at": now.isoformat()}
        if not ports.store.add_breach(model, record):
            continue  # recorded by an earlier run
        before = recent[:-1]
        continuing = (
            any(b["kind"] == breach["kind"] for b in sustained_breaches(before, policy)) if before else False
        )
        action = {"kind": breach["kind"], "window": breach["windows"][-1], "new": not continuing}
        if not continuing:
            detail = {
                "model": model,
                "kind": breach["kind"],
                "windows": breach["windows"],
                "reason": breach["reason"],
            }
            ports.notifier.publish(notify.MONITOR_BREACH, detail)
            if policy.retrain:
                ports.retrain.send(
                    monitor_breach_message(model, [breach["kind"]], breach["reason"], breach["windows"][-1])
                )
                action["retrain_requested"] = True
        acted.append(action)
    return acted
