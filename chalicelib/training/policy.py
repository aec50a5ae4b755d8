"""When to retrain: a pure function of a trigger, the dataset's state and the retrain settings.

request                      -> launch (a person asked; the cooldown does not apply)
a run is in flight           -> coalesce (recorded on the dataset, re-evaluated when it ends)
within the cooldown          -> skip
new valid rows >= min        -> launch (rows an earlier upload holds unchanged are not new)
drift (and on_drift)         -> launch
a monitoring breach          -> launch, if any new row arrived (retraining on the same rows cannot help:
                                the skip says so, and the breach's notification asks for labelled data)
model older than max age     -> launch, if any new row arrived (same data, same model)
otherwise                    -> skip, saying what is missing
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chalicelib.training.settings import RetrainSettings

TRIGGER_KINDS = ("data", "schedule", "request", "run_finished", "monitor")


@dataclass(frozen=True)
class Trigger:
    kind: str  # one of TRIGGER_KINDS
    dataset: str
    reason: str = ""
    upload_id: str | None = None
    rows: int = 0  # a data trigger's new rows: not in an earlier upload, or changed
    drift: bool = False
    repeated_rows: int = 0  # a data trigger's rows that an earlier upload holds (not counted)


@dataclass(frozen=True)
class DatasetState:
    rows_since_training: int = 0
    drift_pending: bool = False
    last_trained_at: datetime | None = None  # end of the last successful run
    last_run_started_at: datetime | None = None
    run_in_flight: str | None = None  # the run holding the lock, if its lock has not expired


@dataclass(frozen=True)
class Decision:
    action: str  # "launch", "coalesce" or "skip"
    reasons: list[str] = field(default_factory=list)


def decide(trigger: Trigger, state: DatasetState, settings: RetrainSettings, now: datetime) -> Decision:
    if state.run_in_flight:
        return Decision("coalesce", [f"run {state.run_in_flight} is in flight; this trigger waits for it"])
    if trigger.kind == "request":
        return Decision("launch", [f"requested: {trigger.reason or 'no reason given'}"])
    if state.last_run_started_at is not None:
        ready = state.last_run_started_at + timedelta(minutes=settings.cooldown_minutes)
        if now < ready:
            return Decision(
                "skip",
                [
                    f"cooldown: the last run started at {state.last_run_started_at:%Y-%m-%d %H:%M}; next run from {ready:%H:%M}"
                ],
            )
    reasons = []
    if state.rows_since_training >= settings.min_new_rows:
        reasons.append(f"{state.rows_since_training} new valid rows >= min_new_rows {settings.min_new_rows}")
    if settings.on_drift and (trigger.drift or state.drift_pending) and state.rows_since_training > 0:
        reasons.append("the latest data drifted from the reference")
    if trigger.kind == "monitor" and state.rows_since_training > 0:
        reasons.append(f"monitoring: {trigger.reason or 'a sustained breach'}")
    if (
        settings.max_champion_age_days is not None
        and state.last_trained_at is not None
        and now - state.last_trained_at > timedelta(days=settings.max_champion_age_days)
        and state.rows_since_training > 0
    ):
        reasons.append(f"the model is older than max_champion_age_days {settings.max_champion_age_days:g}")
    if reasons:
        return Decision("launch", reasons)
    skipped = [
        f"{state.rows_since_training} new valid rows < min_new_rows {settings.min_new_rows}, no drift, model not too old"
    ]
    if trigger.kind == "monitor":
        skipped.append(
            f"monitoring: {trigger.reason or 'a sustained breach'}; but no new valid row since the last "
            "training: upload labelled data (outcomes joined to live inputs) to retrain on"
        )
    if trigger.kind == "data" and trigger.repeated_rows:
        skipped.append(
            f"upload {trigger.upload_id}: {trigger.rows} new row(s); {trigger.repeated_rows} repeat earlier uploads "
            "(not counted)"
        )
    return Decision("skip", skipped)
