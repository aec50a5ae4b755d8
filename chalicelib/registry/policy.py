"""A dataset's promotion policy, read from the ``promotion`` section of its contract.

Pure Python, like the training settings: the policy is checked when the contract is stored, and
every mistake (unknown keys included) raises ContractError naming the field, e.g.
``promotion.guard_metrics.f1``. An example section, every field optional::

    "promotion": {
      "mode": "auto",                    # "auto": promote when every gate passes; "manual": wait for a person
      "min_delta": 0.002,                # the primary metric must improve by at least this (its better direction)
      "significance": true,              # also require a paired bootstrap interval excluding 0
      "confidence": 0.95,
      "bootstrap_samples": 2000,
      "seed": 0,
      "guard_metrics": {"log_loss": 0.01, "f1": 0.02},   # may get worse by at most this much
      "floors": {"roc_auc": 0.7, "log_loss": 0.5},       # the first model's minimum (or maximum) values
      "max_latency_ms": 50,              # p99 of a single-row prediction
      "max_model_bytes": 52428800,
      "require_approval_on_breaking_schema": true,
      "slices": {                        # the holdout in two slices: rows of uploads the champion was
        "combine": "guard",              #   trained on ("earlier") and rows of uploads since ("new")
        "earlier_tolerance": 0.0,        # the candidate's primary metric there may be worse by at most this
        "on_earlier_worse": "approval",  # "approval": a person decides; "reject"
        "min_rows": 20,                  # a smaller earlier slice is reported, not judged
        "significance": true             # "worse" only when the paired bootstrap interval (at
      },                                 #   confidence) lies wholly beyond the tolerance
      "revocation": {                    # when a revoked upload taints the champion:
        "fallback": true,                #   the newest former champion not tainted (nor rejected)
        "retrain": true                  #   serves again at once; and a retrain without the upload
      },
      "rollout": {                       # a promotion by steps instead of a switch (docs/rollouts.md):
        "strategy": "canary",            #   "canary", "linear", or "none" (the default: a switch)
        "canary_percent": 10,            #   canary: this share of the traffic, then all of it
        "linear_percent": 20,            #   linear: +this share every step
        "bake": "15m",                   #   each step held this long (and for min_requests answers)
        "guards": {"max_error_rate": 0.01, "max_disagreement": 0.2}   # chalicelib.registry.rollout.Guards
      }
    }

``rollout`` (``chalicelib.registry.rollout.parse_rollout_policy``): with a strategy, an approval (a
person's, or the evaluator's in ``auto`` mode when the gates say promote) starts a rollout of the
version instead of making it the champion at once; the rollout's completion makes it the champion.
A caller may start one with another schedule (``POST /models/{name}/rollout``) whatever the strategy.

``slices.combine`` says how the slices make the verdict (``SLICE_MODES``): ``"guard"`` judges the
primary metric on every holdout row and, besides, on the earlier slice against the tolerance, so a
candidate that wins only on new uploads (a corrupted export, a changed world: the gates cannot tell)
is never promoted on its own; ``"earlier"`` judges the primary metric on the earlier slice alone
(new uploads cannot sway a promotion); ``"pooled"`` judges every row as one (the slices are only
reported).

``floors`` left out means the task's default (``DEFAULT_FLOORS``: ROC AUC >= 0.6 for classification,
better than the mean, r2 >= 0, for regression); ``"floors": {}`` means no floor at all. A floor on a
lower-is-better metric (rmse, mae, log_loss) is a ceiling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chalicelib.registry.rollout import RolloutPolicy, parse_rollout_policy
from chalicelib.training.settings import METRICS
from chalicelib.validation.contract import Contract
from chalicelib.validation.exceptions import ContractError

MODES = ("auto", "manual")
SLICE_MODES = ("guard", "earlier", "pooled")
ON_EARLIER_WORSE = ("approval", "reject")
# Without floors, a first model better than chance (AUC 0.5) or than predicting the mean (r2 0) by a
# margin: anything less is a broken pipeline rather than a weak model.
DEFAULT_FLOORS: dict[str, dict[str, float]] = {
    "classification": {"roc_auc": 0.6},
    "regression": {"r2": 0.0},
}
MIN_BOOTSTRAP_SAMPLES = 100
MAX_BOOTSTRAP_SAMPLES = 100_000
_KEYS = {
    "mode", "min_delta", "significance", "confidence", "bootstrap_samples", "seed", "guard_metrics",
    "floors", "max_latency_ms", "max_model_bytes", "require_approval_on_breaking_schema", "slices",
    "revocation", "rollout",
}  # fmt: skip
_SLICE_KEYS = {"combine", "earlier_tolerance", "on_earlier_worse", "min_rows", "significance"}
_REVOCATION_KEYS = {"fallback", "retrain"}


@dataclass(frozen=True)
class RevocationPolicy:
    """What a revocation that taints the champion does (``chalicelib.revocation``): ``fallback``
    promotes the newest former champion that is neither tainted nor rejected (an audited change by
    the revoker; without one, or with ``false``, the model answers 409 until a new champion);
    ``retrain`` asks for a retrain of the dataset, whose snapshot leaves the revoked uploads out."""

    fallback: bool = True
    retrain: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"fallback": self.fallback, "retrain": self.retrain}


@dataclass(frozen=True)
class SlicePolicy:
    """How the holdout's slices (rows of uploads the champion was trained on, and of uploads since)
    make the verdict: see the module docstring."""

    combine: str = "guard"
    earlier_tolerance: float = 0.0
    on_earlier_worse: str = "approval"
    min_rows: int = 20
    # Worse only beyond chance: the paired bootstrap (the policy's confidence, samples and seed).
    significance: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "combine": self.combine,
            "earlier_tolerance": self.earlier_tolerance,
            "on_earlier_worse": self.on_earlier_worse,
            "min_rows": self.min_rows,
            "significance": self.significance,
        }


@dataclass(frozen=True)
class PromotionPolicy:
    task: str
    mode: str = "auto"
    min_delta: float = 0.0
    significance: bool = False
    confidence: float = 0.95
    bootstrap_samples: int = 2000
    seed: int = 0
    guard_metrics: Mapping[str, float] = field(default_factory=dict)
    # None: the task's DEFAULT_FLOORS (set in __post_init__, so after construction never None).
    floors: Mapping[str, float] | None = None
    max_latency_ms: float = 50.0
    max_model_bytes: int = 50 * 1024 * 1024
    require_approval_on_breaking_schema: bool = True
    slices: SlicePolicy = field(default_factory=SlicePolicy)
    revocation: RevocationPolicy = field(default_factory=RevocationPolicy)
    rollout: RolloutPolicy = field(default_factory=RolloutPolicy)

    def __post_init__(self) -> None:
        if self.task not in METRICS:
            raise ValueError(f"task {self.task!r} is not one of {', '.join(METRICS)}")
        floors = DEFAULT_FLOORS[self.task] if self.floors is None else self.floors
        # Read-only copies: a policy is shared between threads of a warm Lambda container.
        object.__setattr__(self, "guard_metrics", MappingProxyType(dict(self.guard_metrics)))
        object.__setattr__(self, "floors", MappingProxyType(dict(floors)))

    @property
    def directions(self) -> dict[str, bool]:
        """Metric -> whether greater is better, for this policy's task."""
        return dict(METRICS[self.task])

    @classmethod
    def from_contract(cls, contract: Contract) -> PromotionPolicy:
        return parse_promotion(contract.extensions.get("promotion", {}), contract.task)

    def to_dict(self) -> dict[str, Any]:
        """The policy as JSON (a registry record keeps the policy its verdict was reached under)."""
        return {
            "mode": self.mode,
            "min_delta": self.min_delta,
            "significance": self.significance,
            "confidence": self.confidence,
            "bootstrap_samples": self.bootstrap_samples,
            "seed": self.seed,
            "guard_metrics": dict(self.guard_metrics),
            "floors": dict(self.floors or {}),
            "max_latency_ms": self.max_latency_ms,
            "max_model_bytes": self.max_model_bytes,
            "require_approval_on_breaking_schema": self.require_approval_on_breaking_schema,
            "slices": self.slices.to_dict(),
            "revocation": self.revocation.to_dict(),
            "rollout": _rollout_section(self.rollout),
        }


def _rollout_section(policy: RolloutPolicy) -> dict[str, Any]:
    """The rollout policy as a contract's ``promotion.rollout`` section (``parse_promotion`` reads
    it back to the same policy)."""
    schedule = policy.schedule
    percent = "linear_percent" if schedule.strategy == "linear" else "canary_percent"
    return {
        "strategy": policy.strategy,
        percent: schedule.percent,
        "bake": f"{schedule.bake_s}s",
        "guards": policy.guards.to_dict(),
    }


# --- parsing -------------------------------------------------------------------------------------


def _number(value: Any, where: str) -> float:
    # bool is an int in Python; true is not a number in a contract.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractError(where, f"must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise ContractError(where, "must be finite")
    return float(value)


def _integer(value: Any, where: str, low: int, high: int) -> int:
    number = _number(value, where)
    if not number.is_integer():
        raise ContractError(where, f"must be an integer, not {value!r}")
    if not low <= number <= high:
        raise ContractError(where, f"{value!r} must be between {low} and {high}")
    return int(number)


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ContractError(where, "must be true or false")
    return value


def _metric_map(doc: Any, where: str, task: str, non_negative: bool) -> dict[str, float]:
    if not isinstance(doc, dict):
        raise ContractError(where, "must be a JSON object of metric: number")
    known = METRICS[task]
    result = {}
    for name, value in doc.items():
        if name not in known:
            raise ContractError(f"{where}.{name}", f"is not a {task} metric (one of {', '.join(known)})")
        number = _number(value, f"{where}.{name}")
        if non_negative and number < 0:
            raise ContractError(f"{where}.{name}", f"{value!r} must be >= 0 (a tolerance)")
        result[name] = number
    return result


def parse_promotion(doc: Any, task: str) -> PromotionPolicy:
    """Check a contract's ``promotion`` section for a dataset of the given task."""
    if task not in METRICS:
        raise ContractError("task", f"{task!r} is not one of {', '.join(METRICS)}")
    if not isinstance(doc, dict):
        raise ContractError("promotion", "must be a JSON object")
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise ContractError(
            f"promotion.{unknown[0]}", f"is not a known field (known: {', '.join(sorted(_KEYS))})"
        )
    defaults = PromotionPolicy(task=task)

    mode = doc.get("mode", defaults.mode)
    if mode not in MODES:
        raise ContractError("promotion.mode", f"{mode!r} is not one of {', '.join(MODES)}")

    min_delta = _number(doc.get("min_delta", defaults.min_delta), "promotion.min_delta")
    if min_delta < 0:
        raise ContractError(
            "promotion.min_delta",
            f"{min_delta!r} must be >= 0 (it is measured in the metric's better direction)",
        )

    confidence = _number(doc.get("confidence", defaults.confidence), "promotion.confidence")
    # Below 0.5 an interval "excluding zero" says less than a coin toss; 1 would need every resample.
    if not 0.5 <= confidence < 1:
        raise ContractError("promotion.confidence", f"{confidence!r} must be >= 0.5 and < 1")

    max_latency_ms = _number(doc.get("max_latency_ms", defaults.max_latency_ms), "promotion.max_latency_ms")
    if max_latency_ms <= 0:
        raise ContractError("promotion.max_latency_ms", f"{max_latency_ms!r} must be > 0")

    # Left out (or null): the task's default floors; {} written out: none.
    floors_doc = doc.get("floors")
    floors = (
        None if floors_doc is None else _metric_map(floors_doc, "promotion.floors", task, non_negative=False)
    )
    return PromotionPolicy(
        task=task,
        mode=mode,
        min_delta=min_delta,
        significance=_boolean(doc.get("significance", defaults.significance), "promotion.significance"),
        confidence=confidence,
        bootstrap_samples=_integer(
            doc.get("bootstrap_samples", defaults.bootstrap_samples),
            "promotion.bootstrap_samples",
            MIN_BOOTSTRAP_SAMPLES,
            MAX_BOOTSTRAP_SAMPLES,
        ),
        seed=_integer(doc.get("seed", defaults.seed), "promotion.seed", 0, 2**32 - 1),
        guard_metrics=_metric_map(
            doc.get("guard_metrics", {}), "promotion.guard_metrics", task, non_negative=True
        ),
        floors=floors,
        max_latency_ms=max_latency_ms,
        max_model_bytes=_integer(
            doc.get("max_model_bytes", defaults.max_model_bytes), "promotion.max_model_bytes", 1, 2**53
        ),
        require_approval_on_breaking_schema=_boolean(
            doc.get("require_approval_on_breaking_schema", defaults.require_approval_on_breaking_schema),
            "promotion.require_approval_on_breaking_schema",
        ),
        slices=_parse_slices(doc.get("slices", {})),
        revocation=_parse_revocation(doc.get("revocation", {})),
        rollout=parse_rollout_policy(doc.get("rollout", {})),
    )


def _parse_revocation(doc: Any) -> RevocationPolicy:
    if not isinstance(doc, dict):
        raise ContractError("promotion.revocation", "must be a JSON object")
    unknown = sorted(set(doc) - _REVOCATION_KEYS)
    if unknown:
        raise ContractError(
            f"promotion.revocation.{unknown[0]}",
            f"is not a known field (known: {', '.join(sorted(_REVOCATION_KEYS))})",
        )
    defaults = RevocationPolicy()
    return RevocationPolicy(
        fallback=_boolean(doc.get("fallback", defaults.fallback), "promotion.revocation.fallback"),
        retrain=_boolean(doc.get("retrain", defaults.retrain), "promotion.revocation.retrain"),
    )


def _parse_slices(doc: Any) -> SlicePolicy:
    if not isinstance(doc, dict):
        raise ContractError("promotion.slices", "must be a JSON object")
    unknown = sorted(set(doc) - _SLICE_KEYS)
    if unknown:
        raise ContractError(
            f"promotion.slices.{unknown[0]}",
            f"is not a known field (known: {', '.join(sorted(_SLICE_KEYS))})",
        )
    defaults = SlicePolicy()
    combine = doc.get("combine", defaults.combine)
    if combine not in SLICE_MODES:
        raise ContractError("promotion.slices.combine", f"{combine!r} is not one of {', '.join(SLICE_MODES)}")
    on_worse = doc.get("on_earlier_worse", defaults.on_earlier_worse)
    if on_worse not in ON_EARLIER_WORSE:
        raise ContractError(
            "promotion.slices.on_earlier_worse", f"{on_worse!r} is not one of {', '.join(ON_EARLIER_WORSE)}"
        )
    tolerance = _number(
        doc.get("earlier_tolerance", defaults.earlier_tolerance), "promotion.slices.earlier_tolerance"
    )
    if tolerance < 0:
        raise ContractError(
            "promotion.slices.earlier_tolerance",
            f"{tolerance!r} must be >= 0 (how much worse, in the primary metric, the earlier slice may get)",
        )
    return SlicePolicy(
        combine=combine,
        earlier_tolerance=tolerance,
        on_earlier_worse=on_worse,
        min_rows=_integer(doc.get("min_rows", defaults.min_rows), "promotion.slices.min_rows", 1, 10**9),
        significance=_boolean(
            doc.get("significance", defaults.significance), "promotion.slices.significance"
        ),
    )
