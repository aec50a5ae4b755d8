"""Training settings per dataset, read from the ``training`` section of its contract.

Pure Python on purpose: the Lambda side (retrain policy, kickoff) reads the same settings as the
Batch job, and chalicelib may not import scikit-learn (decision 002). Every mistake raises
ContractError naming the field, e.g. ``training.model.params.max_depth``, so a contract with a typo
is refused when it is stored, not hours later on a spot instance.

An example section, every field optional::

    "training": {
      "model": {"family": "random_forest", "params": {"n_estimators": 200, "max_depth": 12}},
      "primary_metric": "roc_auc",
      "split": {"validation": 0.15, "holdout": 0.15},
      "parity_tolerance": 1e-5,
      "retrain": {"min_new_rows": 100, "max_champion_age_days": 30, "on_drift": true, "cooldown_minutes": 30}
    }
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chalicelib.validation.contract import Contract
from chalicelib.validation.exceptions import ContractError

# Metric name -> whether a greater value is better (the promotion gates compare in this direction).
METRICS: dict[str, dict[str, bool]] = {
    "classification": {"accuracy": True, "f1": True, "roc_auc": True, "log_loss": False},
    "regression": {"rmse": False, "mae": False, "r2": True},
}
DEFAULT_METRIC = {"classification": "roc_auc", "regression": "rmse"}
DEFAULT_FAMILY = {"classification": "logistic_regression", "regression": "linear_regression"}
# Seed used when the contract gives none, so that two runs on the same data train the same model.
DEFAULT_RANDOM_STATE = 0


@dataclass(frozen=True)
class _Param:
    """What a hyper-parameter accepts: JSON numbers only (no strings), so the allow-list is the whole story."""

    integer: bool
    low: float  # inclusive unless low_open
    high: float | None = None  # inclusive
    low_open: bool = False
    nullable: bool = False

    def check(self, value: Any, where: str) -> int | float | None:
        if value is None:
            if self.nullable:
                return None
            raise ContractError(where, "must be a number, not null")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ContractError(where, f"must be a number{' or null' if self.nullable else ''}")
        if self.integer and not (isinstance(value, int) or float(value).is_integer()):
            raise ContractError(where, f"must be an integer, not {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ContractError(where, "must be finite")
        too_low = value <= self.low if self.low_open else value < self.low
        if too_low or (self.high is not None and value > self.high):
            bounds = f"{'>' if self.low_open else '>='} {self.low:g}"
            if self.high is not None:
                bounds += f" and <= {self.high:g}"
            raise ContractError(where, f"{value!r} must be {bounds}")
        return int(value) if self.integer else float(value)


_RANDOM_STATE = _Param(integer=True, low=0, high=2**32 - 1, nullable=True)


@dataclass(frozen=True)
class Family:
    tasks: tuple[str, ...]
    params: dict[str, _Param]
    # Whether the estimator takes random_state (LinearRegression does not; the seed is then unused).
    seeded: bool = True


FAMILIES: dict[str, Family] = {
    "logistic_regression": Family(
        tasks=("classification",),
        params={
            "C": _Param(integer=False, low=0, low_open=True),
            "max_iter": _Param(integer=True, low=1, high=100_000),
            "tol": _Param(integer=False, low=0, low_open=True),
        },
    ),
    "linear_regression": Family(tasks=("regression",), params={}, seeded=False),
    "random_forest": Family(
        tasks=("classification", "regression"),
        params={
            "n_estimators": _Param(integer=True, low=1, high=5_000),
            "max_depth": _Param(integer=True, low=1, high=1_000, nullable=True),
            "min_samples_leaf": _Param(integer=True, low=1),
            "min_samples_split": _Param(integer=True, low=2),
            # A fraction of the features tried at each split (sklearn also takes counts; fractions
            # stay meaningful when the one-hot width changes between runs).
            "max_features": _Param(integer=False, low=0, high=1, low_open=True, nullable=True),
        },
    ),
    "hist_gradient_boosting": Family(
        tasks=("classification", "regression"),
        params={
            "max_iter": _Param(integer=True, low=1, high=10_000),
            "learning_rate": _Param(integer=False, low=0, low_open=True),
            "max_depth": _Param(integer=True, low=1, high=1_000, nullable=True),
            "max_leaf_nodes": _Param(integer=True, low=2, nullable=True),
            "min_samples_leaf": _Param(integer=True, low=1),
            "l2_regularization": _Param(integer=False, low=0),
        },
    ),
}


@dataclass(frozen=True)
class ModelSettings:
    family: str
    # Read-only: settings are shared between threads of a warm Lambda container.
    params: MappingProxyType[str, int | float | None]

    def estimator_params(self) -> dict[str, int | float | None]:
        """The keyword arguments of the estimator: the params, with a default seed where one is taken."""
        params = dict(self.params)
        seed = params.pop("random_state", DEFAULT_RANDOM_STATE)
        if FAMILIES[self.family].seeded:
            params["random_state"] = seed
        return params


@dataclass(frozen=True)
class SplitSettings:
    validation: float = 0.15
    holdout: float = 0.15


@dataclass(frozen=True)
class RetrainSettings:
    min_new_rows: int = 100
    max_champion_age_days: float | None = 30  # None: age alone never triggers a retrain
    on_drift: bool = True
    cooldown_minutes: float = 30


@dataclass(frozen=True)
class TrainingSettings:
    task: str
    model: ModelSettings
    primary_metric: str
    split: SplitSettings = field(default_factory=SplitSettings)
    parity_tolerance: float = 1e-5
    retrain: RetrainSettings = field(default_factory=RetrainSettings)

    @property
    def greater_is_better(self) -> bool:
        return METRICS[self.task][self.primary_metric]

    @classmethod
    def from_contract(cls, contract: Contract) -> TrainingSettings:
        return parse_training(contract.extensions.get("training", {}), contract.task)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON (run manifests record what a model was trained with)."""
        return {
            "model": {"family": self.model.family, "params": dict(self.model.params)},
            "primary_metric": self.primary_metric,
            "split": {"validation": self.split.validation, "holdout": self.split.holdout},
            "parity_tolerance": self.parity_tolerance,
            "retrain": {
                "min_new_rows": self.retrain.min_new_rows,
                "max_champion_age_days": self.retrain.max_champion_age_days,
                "on_drift": self.retrain.on_drift,
                "cooldown_minutes": self.retrain.cooldown_minutes,
            },
        }


# --- parsing -------------------------------------------------------------------------------------


def _object(doc: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ContractError(where, "must be a JSON object")
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ContractError(
            f"{where}.{unknown[0]}", f"is not a known field (known: {', '.join(sorted(allowed))})"
        )
    return doc


def parse_training(doc: Any, task: str) -> TrainingSettings:
    """Check a contract's ``training`` section for a dataset of the given task."""
    if task not in METRICS:
        raise ContractError("task", f"{task!r} is not one of {', '.join(METRICS)}")
    doc = _object(doc, "training", {"model", "primary_metric", "split", "parity_tolerance", "retrain"})
    model = _parse_model(doc.get("model", {}), task)

    metric = doc.get("primary_metric", DEFAULT_METRIC[task])
    if not isinstance(metric, str):
        raise ContractError("training.primary_metric", "must be a string")
    if metric not in METRICS[task]:
        raise ContractError(
            "training.primary_metric",
            f"{metric!r} is not a {task} metric (one of {', '.join(METRICS[task])})",
        )

    tolerance = doc.get("parity_tolerance", 1e-5)
    tolerance = _Param(integer=False, low=0, high=0.1, low_open=True).check(
        tolerance, "training.parity_tolerance"
    )
    assert tolerance is not None  # not nullable
    return TrainingSettings(
        task=task,
        model=model,
        primary_metric=metric,
        split=_parse_split(doc.get("split", {})),
        parity_tolerance=tolerance,
        retrain=_parse_retrain(doc.get("retrain", {})),
    )


def _parse_model(doc: Any, task: str) -> ModelSettings:
    doc = _object(doc, "training.model", {"family", "params"})
    family = doc.get("family", DEFAULT_FAMILY[task])
    if not isinstance(family, str):
        raise ContractError("training.model.family", "must be a string")
    if family not in FAMILIES:
        raise ContractError("training.model.family", f"{family!r} is not one of {', '.join(FAMILIES)}")
    spec = FAMILIES[family]
    if task not in spec.tasks:
        raise ContractError(
            "training.model.family", f"{family} does not serve {task} (only {', '.join(spec.tasks)})"
        )
    allowed = {**spec.params, "random_state": _RANDOM_STATE}
    raw = _object(doc.get("params", {}), "training.model.params", set(allowed))
    params = {key: allowed[key].check(value, f"training.model.params.{key}") for key, value in raw.items()}
    return ModelSettings(family=family, params=MappingProxyType(params))


def _parse_split(doc: Any) -> SplitSettings:
    doc = _object(doc, "training.split", {"validation", "holdout"})
    defaults = SplitSettings()
    # Both are needed: validation is measured (metrics.json), holdout is what parity and the
    # promotion gates score. Nothing is selected on validation (the parameters are the contract's).
    fraction = _Param(integer=False, low=0, high=0.9, low_open=True)
    validation = fraction.check(doc.get("validation", defaults.validation), "training.split.validation")
    holdout = fraction.check(doc.get("holdout", defaults.holdout), "training.split.holdout")
    assert validation is not None and holdout is not None  # not nullable
    if validation + holdout >= 0.9:
        raise ContractError(
            "training.split",
            f"validation + holdout = {validation + holdout:g} must be below 0.9 (leave rows to train on)",
        )
    return SplitSettings(validation=validation, holdout=holdout)


def _parse_retrain(doc: Any) -> RetrainSettings:
    doc = _object(
        doc, "training.retrain", {"min_new_rows", "max_champion_age_days", "on_drift", "cooldown_minutes"}
    )
    defaults = RetrainSettings()
    min_new_rows = _Param(integer=True, low=0).check(
        doc.get("min_new_rows", defaults.min_new_rows), "training.retrain.min_new_rows"
    )
    age = _Param(integer=False, low=0, low_open=True, nullable=True).check(
        doc.get("max_champion_age_days", defaults.max_champion_age_days),
        "training.retrain.max_champion_age_days",
    )
    cooldown = _Param(integer=False, low=0).check(
        doc.get("cooldown_minutes", defaults.cooldown_minutes), "training.retrain.cooldown_minutes"
    )
    on_drift = doc.get("on_drift", defaults.on_drift)
    if not isinstance(on_drift, bool):
        raise ContractError("training.retrain.on_drift", "must be true or false")
    assert min_new_rows is not None and cooldown is not None  # not nullable
    return RetrainSettings(
        min_new_rows=int(min_new_rows),
        max_champion_age_days=age,
        on_drift=on_drift,
        cooldown_minutes=cooldown,
    )
