"""A dataset's monitoring policy, read from the ``monitoring`` section of its contract.

Pure Python, checked when the contract is stored: every mistake (unknown keys included) raises
ContractError naming the field, e.g. ``monitoring.drift.persistence``. Every field is optional; the
defaults below are what a contract without the section gets::

    "monitoring": {
      "capture": true,              # record /predict answers and batch rows (false: nothing is captured)
      "sample_rate": 1.0,           # share of /predict requests captured, chosen by a hash of the request id
      "window_minutes": 60,         # the monitor's window; divides a day (5, 10, 15, 20, 30, 60, ... 1440)
      "confidential": "drop",       # confidential inputs: "drop", or "hash" (keyed HMAC-SHA256); pii: always dropped
      "min_requests": 100,          # a window with fewer captured records is "insufficient_data", never a breach
      "drift": {
        "threshold": 0.0,           # a window drifts when the share of drifted features is above this
        "persistence": 2            #   (0: any feature, by the contract's drift tests); breach: N windows in a row
      },
      "quality": {
        "floor": 0.95,              # share of live values the contract would accept (missing, range, categories)
        "persistence": 2
      },
      "performance": {
        "floor": null,              # the primary metric's floor; null: the champion's holdout value - tolerance
        "tolerance": null,          # null: 0.01 for accuracy, f1, roc_auc, r2; 10% of the holdout value
                                    #   for rmse, mae, log_loss (in the target's units)
        "min_outcomes": 500,        # a window is judged once outcomes cover this many of its predictions
        "confidence": 0.95,         # one-sided: a breach when the interval's better end is below the floor
        "bootstrap_samples": 1000,
        "persistence": 1
      },
      "outcome_horizon_hours": 168, # outcomes arriving later than this after the prediction are not joined
      "retrain": true               # a sustained breach asks for a retrain (kind "monitor")
    }

The window statistics and breach rules are in ``chalicelib.monitoring``; what the rules mean, with
their measured error rates, is in docs/monitoring.md.

Why these defaults (the replay benchmark, ``make bench-monitoring``, docs/BENCHMARKS.md; windows of
500 records on a generated table and on breast_cancer): each window's drift tests share the
contract's ``ks_pvalue`` budget, so a stable window drifts about 1% of the time or less (0 of 200
stable windows measured). ``drift.persistence`` 2 makes a false alarm need two such windows in a row
(about 1 in 10,000) and detects a 0.5-SD shift of the most important feature in 2 windows, the
goal; persistence 1 would detect in 1 window but raise about one false alarm per 100 windows, and
3 would miss the goal. ``quality.persistence`` 2 for the same reason. ``performance.persistence``
1: a window's outcomes arrive over days, so waiting for a second window delays a retrain by the
outcome horizon; the one-sided 95% bound already makes a clean window breach about 1% of the time.
With ``tolerance`` 0.01 and 500 outcomes, a 5-point accuracy drop is caught in a single window
about 9 times in 10 (the interval's half-width at 500 outcomes is about 2.4 points); 1,000
outcomes (``min_outcomes``) would catch nearly all, at twice the wait.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from chalicelib.validation.contract import Contract
from chalicelib.validation.exceptions import ContractError

CONFIDENTIAL_MODES = ("drop", "hash")
MINUTES_PER_DAY = 24 * 60
_KEYS = {
    "capture", "sample_rate", "window_minutes", "confidential", "min_requests", "drift", "quality",
    "performance", "outcome_horizon_hours", "retrain",
}  # fmt: skip
_DRIFT_KEYS = {"threshold", "persistence"}
_QUALITY_KEYS = {"floor", "persistence"}
_PERFORMANCE_KEYS = {"floor", "tolerance", "min_outcomes", "confidence", "bootstrap_samples", "persistence"}
MAX_PERSISTENCE = 48


@dataclass(frozen=True)
class DriftRule:
    threshold: float = 0.0
    persistence: int = 2


@dataclass(frozen=True)
class QualityRule:
    floor: float = 0.95
    persistence: int = 2


@dataclass(frozen=True)
class PerformanceRule:
    floor: float | None = None
    tolerance: float | None = (
        None  # None: 0.01 (bounded metrics) or 0.10 of the holdout value (rmse, mae, log_loss)
    )
    min_outcomes: int = 500
    confidence: float = 0.95
    bootstrap_samples: int = 1000
    persistence: int = 1


@dataclass(frozen=True)
class MonitoringPolicy:
    capture: bool = True
    sample_rate: float = 1.0
    window_minutes: int = 60
    confidential: str = "drop"
    min_requests: int = 100
    drift: DriftRule = field(default_factory=DriftRule)
    quality: QualityRule = field(default_factory=QualityRule)
    performance: PerformanceRule = field(default_factory=PerformanceRule)
    outcome_horizon_hours: int = 168
    retrain: bool = True

    @classmethod
    def from_contract(cls, contract: Contract) -> MonitoringPolicy:
        return parse_monitoring(contract.extensions.get("monitoring", {}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "capture": self.capture,
            "sample_rate": self.sample_rate,
            "window_minutes": self.window_minutes,
            "confidential": self.confidential,
            "min_requests": self.min_requests,
            "drift": {"threshold": self.drift.threshold, "persistence": self.drift.persistence},
            "quality": {"floor": self.quality.floor, "persistence": self.quality.persistence},
            "performance": {
                "floor": self.performance.floor,
                "tolerance": self.performance.tolerance,
                "min_outcomes": self.performance.min_outcomes,
                "confidence": self.performance.confidence,
                "bootstrap_samples": self.performance.bootstrap_samples,
                "persistence": self.performance.persistence,
            },
            "outcome_horizon_hours": self.outcome_horizon_hours,
            "retrain": self.retrain,
        }


def _number(value: Any, where: str, low: float, high: float) -> float:
    # bool is an int in Python; true is not a number in a contract.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractError(where, f"must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ContractError(where, f"{value!r} must be between {low:g} and {high:g}")
    return float(value)


def _integer(value: Any, where: str, low: int, high: int) -> int:
    number = _number(value, where, low, high)
    if not number.is_integer():
        raise ContractError(where, f"must be an integer, not {value!r}")
    return int(number)


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ContractError(where, "must be true or false")
    return value


def _object(doc: Any, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ContractError(where, "must be a JSON object")
    for key in doc:
        if key not in keys:
            raise ContractError(f"{where}.{key}", f"is not a field (one of {', '.join(sorted(keys))})")
    return doc


def parse_monitoring(doc: Any) -> MonitoringPolicy:
    """The policy from a ``monitoring`` section (``{}``: every default)."""
    doc = _object(doc, "monitoring", _KEYS)
    base = MonitoringPolicy()
    window = base.window_minutes
    if "window_minutes" in doc:
        window = _integer(doc["window_minutes"], "monitoring.window_minutes", 5, MINUTES_PER_DAY)
        if MINUTES_PER_DAY % window:
            raise ContractError("monitoring.window_minutes", f"{window} must divide a day (1440 minutes)")
    confidential = doc.get("confidential", base.confidential)
    if confidential not in CONFIDENTIAL_MODES:
        raise ContractError("monitoring.confidential", f"{confidential!r} must be one of drop, hash")
    drift_doc = _object(doc.get("drift", {}), "monitoring.drift", _DRIFT_KEYS)
    quality_doc = _object(doc.get("quality", {}), "monitoring.quality", _QUALITY_KEYS)
    perf_doc = _object(doc.get("performance", {}), "monitoring.performance", _PERFORMANCE_KEYS)
    d, q, p = DriftRule(), QualityRule(), PerformanceRule()
    floor = perf_doc.get("floor")
    return MonitoringPolicy(
        capture=_boolean(doc.get("capture", base.capture), "monitoring.capture"),
        sample_rate=_number(doc.get("sample_rate", base.sample_rate), "monitoring.sample_rate", 0.0, 1.0),
        window_minutes=window,
        confidential=confidential,
        min_requests=_integer(
            doc.get("min_requests", base.min_requests), "monitoring.min_requests", 1, 10**7
        ),
        drift=DriftRule(
            threshold=_number(
                drift_doc.get("threshold", d.threshold), "monitoring.drift.threshold", 0.0, 1.0
            ),
            persistence=_integer(
                drift_doc.get("persistence", d.persistence),
                "monitoring.drift.persistence",
                1,
                MAX_PERSISTENCE,
            ),
        ),
        quality=QualityRule(
            floor=_number(quality_doc.get("floor", q.floor), "monitoring.quality.floor", 0.0, 1.0),
            persistence=_integer(
                quality_doc.get("persistence", q.persistence),
                "monitoring.quality.persistence",
                1,
                MAX_PERSISTENCE,
            ),
        ),
        performance=PerformanceRule(
            floor=None
            if floor is None
            else _number(floor, "monitoring.performance.floor", -math.inf, math.inf),
            tolerance=None
            if perf_doc.get("tolerance") is None
            else _number(perf_doc["tolerance"], "monitoring.performance.tolerance", 0.0, 1e9),
            min_outcomes=_integer(
                perf_doc.get("min_outcomes", p.min_outcomes), "monitoring.performance.min_outcomes", 10, 10**7
            ),
            confidence=_number(
                perf_doc.get("confidence", p.confidence), "monitoring.performance.confidence", 0.5, 0.999
            ),
            bootstrap_samples=_integer(
                perf_doc.get("bootstrap_samples", p.bootstrap_samples),
                "monitoring.performance.bootstrap_samples",
                100,
                100_000,
            ),
            persistence=_integer(
                perf_doc.get("persistence", p.persistence),
                "monitoring.performance.persistence",
                1,
                MAX_PERSISTENCE,
            ),
        ),
        outcome_horizon_hours=_integer(
            doc.get("outcome_horizon_hours", base.outcome_horizon_hours),
            "monitoring.outcome_horizon_hours",
            1,
            24 * 90,
        ),
        retrain=_boolean(doc.get("retrain", base.retrain), "monitoring.retrain"),
    )
