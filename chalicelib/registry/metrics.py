"""The training metrics in numpy, computed from per-row predictions, plain or on bootstrap resamples.

The promotion stage runs in Lambda, where scikit-learn is not available (decision 002), yet it must
recompute the metrics of ``jobs/training/core.py`` on holdout predictions and on thousands of
bootstrap resamples of them. The names and definitions follow the training job (and scikit-learn,
which the tests compare against):

* classification, from probabilities ``(n, k)`` whose columns are the classes in order, and the true
  class as a column index ``0..k-1``: ``accuracy`` (the predicted class is the first column holding
  the row's largest probability, as ``np.argmax``), ``log_loss`` (probabilities clipped to
  ``[eps, 1 - eps]``), ``roc_auc`` (binary: column 1 is the positive class, the rank statistic with
  ties counted as one half; more classes: the macro average of one-vs-rest AUCs), ``f1`` (binary: of
  column 1; more classes: the macro average, 0 for a class never predicted nor present);
* regression, from predictions ``(n,)``: ``rmse``, ``mae``, ``r2``.

A bootstrap resample drawn with replacement is the same rows with integer multiplicities, so every
metric here is computed from a weight matrix ``w`` of shape ``(B, n)`` (how often each row is in each
of B resamples): one pass of sums per resample and no re-sorting, which keeps 2000 resamples of a
10,000-row holdout well inside a Lambda's time. Plain evaluation is the same code with one row of
ones, so a point estimate and its resamples can never disagree on a definition.

A metric that is undefined on some rows (AUC without both classes, r2 of a constant target) is NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# A prepared metric: weights (B, n) -> values (B,).
WeightedMetric = Callable[[np.ndarray], np.ndarray]

CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
_EPS = float(np.finfo(np.float64).eps)


def class_indices(y_true: Sequence[Any] | np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    """Labels as the column index of their class (the order of the probability columns).

    A label read back from CSV text ("1" for the class 1) finds its class by its text, as long as
    no two classes share one.
    """
    position = {_plain(c): i for i, c in enumerate(classes)}
    if len(position) != len(classes):
        raise ValueError("classes repeat a label")
    by_text = {str(c): i for c, i in position.items()}
    if len(by_text) != len(position):
        by_text = {}  # 1 and "1" both classes: text is ambiguous, exact labels only

    def index(value: Any) -> int:
        value = _plain(value)
        found = position.get(value)
        if found is None:
            found = by_text.get(str(value))
        if found is None:
            raise ValueError(f"label {value!r} is not one of the classes {list(classes)!r}")
        return found

    return np.fromiter((index(v) for v in y_true), dtype=np.int64, count=len(y_true))


def _plain(value: Any) -> Any:
    # numpy scalars and their Python values must find the same class (np.int64(1) and 1, np.str_ and str).
    return value.item() if isinstance(value, np.generic) else value


def prepare(metric: str, y_true: np.ndarray, scores: np.ndarray) -> WeightedMetric:
    """A function of resample weights computing ``metric`` of ``scores`` against ``y_true``.

    Classification: ``y_true`` holds class indices (see ``class_indices``), ``scores`` the
    probabilities ``(n, k)``. Regression: both are ``(n,)`` numbers.
    """
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    if metric in CLASSIFICATION_METRICS:
        if scores.ndim != 2 or scores.shape[1] < 2:
            raise ValueError(f"{metric} needs probabilities of shape (n, classes >= 2), got {scores.shape}")
        if len(y_true) != len(scores):
            raise ValueError(f"{len(y_true)} labels for {len(scores)} rows of probabilities")
        y = y_true.astype(np.int64)
        if len(y) and (y.min() < 0 or y.max() >= scores.shape[1]):
            raise ValueError("labels must be class indices 0..k-1 (see class_indices)")
        return _CLASSIFICATION[metric](y, scores)
    if metric in REGRESSION_METRICS:
        scores = scores.reshape(-1) if scores.ndim == 2 and scores.shape[1] == 1 else scores
        if scores.ndim != 1:
            raise ValueError(f"{metric} needs one prediction per row, got shape {scores.shape}")
        if len(y_true) != len(scores):
            raise ValueError(f"{len(y_true)} targets for {len(scores)} predictions")
        return _REGRESSION[metric](y_true.astype(np.float64), scores)
    known = ", ".join(CLASSIFICATION_METRICS + REGRESSION_METRICS)
    raise ValueError(f"{metric!r} is not a metric computable from predictions (one of {known})")


def compute(metric: str, y_true: np.ndarray, scores: np.ndarray) -> float:
    """The metric on all rows, once (NaN where undefined)."""
    n = len(np.asarray(y_true))
    if n == 0:
        return float("nan")
    return float(prepare(metric, y_true, scores)(np.ones((1, n)))[0])


# --- classification -------------------------------------------------------------------------------


def _mean(w: np.ndarray, per_row: np.ndarray) -> np.ndarray:
    return (w @ per_row) / w.sum(axis=1)


def _accuracy(y: np.ndarray, p: np.ndarray) -> WeightedMetric:
    correct = (np.argmax(p, axis=1) == y).astype(np.float64)
    return lambda w: _mean(w, correct)


def _log_loss(y: np.ndarray, p: np.ndarray) -> WeightedMetric:
    # As scikit-learn: clip, no renormalisation; only the true class's probability counts.
    loss = -np.log(np.clip(p[np.arange(len(y)), y], _EPS, 1 - _EPS))
    return lambda w: _mean(w, loss)


def _f1_counts(
    w: np.ndarray, predicted: np.ndarray, y: np.ndarray, cls: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hit = predicted == cls
    actual = y == cls
    tp = w @ (hit & actual).astype(np.float64)
    fp = w @ (hit & ~actual).astype(np.float64)
    fn = w @ (~hit & actual).astype(np.float64)
    return tp, fp, fn


def _f1_of(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    # scikit-learn's zero_division: a class neither predicted nor present scores 0.
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def _f1(y: np.ndarray, p: np.ndarray) -> WeightedMetric:
    predicted = np.argmax(p, axis=1)
    k = p.shape[1]

    def f1(w: np.ndarray) -> np.ndarray:
        if k == 2:
            return _f1_of(*_f1_counts(w, predicted, y, 1))
        return np.mean([_f1_of(*_f1_counts(w, predicted, y, c)) for c in range(k)], axis=0)

    return f1


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> WeightedMetric:
    """AUC = P(score of a positive > score of a negative) + P(equal) / 2, with resample weights.

    Rows are sorted by score once; tied scores form one group. For each group, its positives beat
    every negative of the lower groups and tie with its own negatives. All sums are of integer
    multiplicities, exact in float64, so the only rounding is the final division.
    """
    order = np.argsort(score, kind="stable")
    sorted_score = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])
    pos = positive[order].astype(np.float64)
    neg = 1.0 - pos

    def auc(w: np.ndarray) -> np.ndarray:
        ws = w[:, order]
        pos_g = np.add.reduceat(ws * pos, starts, axis=1)
        neg_g = np.add.reduceat(ws * neg, starts, axis=1)
        neg_below = np.cumsum(neg_g, axis=1) - neg_g
        wins = (pos_g * (neg_below + 0.5 * neg_g)).sum(axis=1)
        pairs = pos_g.sum(axis=1) * neg_g.sum(axis=1)
        return np.divide(wins, pairs, out=np.full(len(w), np.nan), where=pairs > 0)

    return auc


def _roc_auc(y: np.ndarray, p: np.ndarray) -> WeightedMetric:
    if p.shape[1] == 2:
        return _binary_auc(y == 1, p[:, 1])
    # One-vs-rest, macro: undefined (NaN) as soon as one class is absent, as scikit-learn refuses it.
    per_class = [_binary_auc(y == c, p[:, c]) for c in range(p.shape[1])]
    return lambda w: np.mean([auc(w) for auc in per_class], axis=0)


_CLASSIFICATION: dict[str, Callable[[np.ndarray, np.ndarray], WeightedMetric]] = {
    "accuracy": _accuracy,
    "f1": _f1,
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
}


# --- regression -----------------------------------------------------------------------------------


def _rmse(y: np.ndarray, predicted: np.ndarray) -> WeightedMetric:
    squared = (predicted - y) ** 2
    return lambda w: np.sqrt(_mean(w, squared))


def _mae(y: np.ndarray, predicted: np.ndarray) -> WeightedMetric:
    absolute = np.abs(predicted - y)
    return lambda w: _mean(w, absolute)


def _r2(y: np.ndarray, predicted: np.ndarray) -> WeightedMetric:
    squared = (predicted - y) ** 2

    def r2(w: np.ndarray) -> np.ndarray:
        total = w.sum(axis=1)
        mean = (w @ y) / total
        # Centred sums, not sum(y^2) - n mean^2, which cancels catastrophically on large targets.
        ss_tot = (w * (y[None, :] - mean[:, None]) ** 2).sum(axis=1)
        ss_res = w @ squared
        present = w > 0
        spread = np.where(present, y, -np.inf).max(axis=1) - np.where(present, y, np.inf).min(axis=1)
        # A constant target has no variance to explain: undefined, whatever rounding left in ss_tot.
        ratio = np.divide(ss_res, ss_tot, out=np.full(len(w), np.nan), where=spread > 0)
        return 1.0 - ratio

    return r2


_REGRESSION: dict[str, Callable[[np.ndarray, np.ndarray], WeightedMetric]] = {
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
}
