"""What may leave the data zones about pii and confidential columns: aggregates that cannot reveal a value.

Raw rows live only in the data bucket's ``incoming/``, ``validated/`` and ``quarantine/``. Everything
else (reports, drift profiles, the training job's reference profile, logs) describes a sensitive
column with these, and never with one of its values:

* **pii**: nothing but counts (rows, nulls, distinct values, lengths); no drift profile at all. A
  mean or standard deviation only over at least ``MIN_GROUP`` values.
* **confidential numbers**: the drift sample *microaggregated* (a standard disclosure-control
  method): sorted, cut into groups of at least ``MIN_GROUP`` consecutive values, and rebuilt from
  the groups' means (``microaggregate``). Every number kept is a mean of ``MIN_GROUP`` or more rows,
  or a weighted mean of two such means, and the distribution's shape, which drift statistics need,
  survives. Fewer than ``MIN_GROUP`` values: no sample.
* **confidential text**: counts per *hash bucket* (``BUCKETS`` buckets of a SHA-256 of
  the value) instead of per value. A bucket label names a sixty-fourth of all possible values, never
  one; the same value lands in the same bucket in every file, so shares can still be compared.
* **columns whose contract lists their values** (``allowed``: every category column, some integer
  and string ones; booleans) keep their profile: a count per listed value, or a sample of listed
  values, says nothing the contract does not.

A masked column profile says how (``"masked"``), so masking is idempotent and a reference written
before masking existed is masked when read (``mask_profile``), and compares like with like.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Any

import numpy as np

from chalicelib.validation.contract import SENSITIVE, Column, Contract

MIN_GROUP = 10  # rows an aggregate of a sensitive column covers at least
BUCKETS = 64
MASK = "***"
MICROAGGREGATED = f"microaggregated-{MIN_GROUP}"
HASHED = f"hashed-{BUCKETS}"
_BUCKET_PREFIX = "bucket-"


def enough_for_aggregate(n: int) -> bool:
    """Whether an aggregate (a mean, a standard deviation) over ``n`` values of a sensitive column may
    be shown: with fewer, it is too close to one row's value."""
    return n >= MIN_GROUP


def values_listed(column: Column) -> bool:
    """Whether the contract itself lists every value the column may hold (so naming one reveals
    nothing the contract does not): booleans, and columns with ``allowed``."""
    return column.type == "boolean" or column.allowed is not None


def microaggregate(values: Iterable[float], group: int = MIN_GROUP) -> list[float]:
    """As many values as given, each an aggregate: the sorted values are cut into groups of ``group``
    consecutive ones (the last takes the remainder, so each has at least ``group``), and the value at
    each rank is read off the line through the groups' means at their middle ranks (flat beyond the
    first and last middle). Every value returned is a group's mean or a weighted mean of two
    neighbouring groups' means, never read from one row (it equals a row's value only where the
    values are evenly spaced, like a sequence of ids, whose set is the distribution itself).

    Why interpolate: replacing each value by its group's mean alone makes ties, and ties make the
    Kolmogorov-Smirnov and PSI statistics cry drift (60% false alarms at 100 rows, measured). With
    the line, false alarms and detection stay those of the raw values (tests/unit/test_privacy.py).
    [] when there are fewer values than ``group``.
    """
    data = np.sort(np.asarray(list(values), dtype=np.float64))
    data = data[np.isfinite(data)]
    n = int(data.size)
    if n < group:
        return []
    groups = list(pairwise([i * group for i in range(n // group)] + [n]))
    means = [float(data[lo:hi].mean()) for lo, hi in groups]
    middles = [(lo + hi - 1) / 2.0 for lo, hi in groups]
    return [float(v) for v in np.interp(np.arange(n, dtype=np.float64), middles, means).tolist()]


def bucket_of(value: str) -> str:
    """The hash bucket a value of a confidential text column is counted in."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()
    return f"{_BUCKET_PREFIX}{int.from_bytes(digest[:8], 'big') % BUCKETS:02d}"


def is_bucket_label(label: Any) -> bool:
    return (
        isinstance(label, str) and label.startswith(_BUCKET_PREFIX) and label[len(_BUCKET_PREFIX) :].isdigit()
    )


def bucket_counts(counts: Mapping[str, int]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for value, n in counts.items():
        label = bucket_of(str(value))
        merged[label] = merged.get(label, 0) + int(n)
    return dict(sorted(merged.items()))


def mask_column_profile(column: Column, profile: dict[str, Any] | None) -> dict[str, Any] | None:
    """A column's drift profile as it may be stored: None for pii, aggregates for confidential."""
    if profile is None or column.classification == "pii":
        return None
    if column.classification not in SENSITIVE or profile.get("masked") or values_listed(column):
        return profile  # (listed values: a count per value of the contract's own list reveals no row)
    if profile.get("kind") == "numeric":
        return {**profile, "sample": microaggregate(profile.get("sample") or []), "masked": MICROAGGREGATED}
    if profile.get("kind") == "categorical":
        return {**profile, "counts": bucket_counts(profile.get("counts") or {}), "masked": HASHED}
    return profile


def mask_profile(profile: dict[str, Any] | None, contract: Contract) -> dict[str, Any] | None:
    """A whole drift profile masked column by column (a reference stored before masking, say)."""
    if profile is None:
        return None
    by_name = {c.name: c for c in contract.columns}
    columns: dict[str, Any] = {}
    for name, column_profile in (profile.get("columns") or {}).items():
        column = by_name.get(name)
        if column is None:  # a column the contract no longer has: nothing to compare it with
            continue
        masked = mask_column_profile(column, column_profile)
        if masked is not None:
            columns[name] = masked
    return {**profile, "columns": columns}


def mask_drift(drift: dict[str, Any], contract: Contract) -> dict[str, Any]:
    """The drift section of a report with any text of a sensitive feature that is not a bucket label
    (a category, should a profile ever carry one) replaced by ``MASK``."""
    sensitive = {c.name: c for c in contract.columns if c.classification in SENSITIVE}
    features = drift.get("features")
    if not isinstance(features, dict):
        return drift
    masked = {
        name: (_mask_strings(feature, _shown(sensitive[name])) if name in sensitive else feature)
        for name, feature in features.items()
    }
    return {**drift, "features": masked}


def _shown(column: Column) -> frozenset[str]:
    """Category labels of a sensitive column that a report may show: the contract's own."""
    if column.type == "boolean":
        return frozenset({"true", "false"})
    return frozenset(str(v) for v in column.allowed or ())


def _mask_strings(value: Any, shown: frozenset[str], key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _mask_strings(v, shown, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_strings(v, shown, key) for v in value]
    if (
        isinstance(value, str)
        and key.endswith("categories")
        and not (is_bucket_label(value) or value in shown)
    ):
        return MASK
    return value


def mask_header_issues(issues: list[dict[str, Any]], contract: Contract) -> list[dict[str, Any]]:
    """Header issues of a file whose first line is data, not a header (not one of the contract's
    columns is in it): the "column names" are then a row's values, and are masked."""
    missing = {i.get("column") for i in issues if i.get("code") == "MISSING_COLUMN"}
    if not contract.columns or missing != set(contract.column_names):
        return issues
    out: list[dict[str, Any]] = []
    merged: dict[str, dict[str, Any]] = {}
    for issue in issues:
        code = issue.get("code")
        if code not in ("UNEXPECTED_COLUMN", "DUPLICATE_COLUMN"):
            out.append(issue)
        elif code in merged:
            merged[code]["count"] += int(issue.get("count") or 1)
        else:
            merged[code] = {
                **issue,
                "column": MASK,
                "count": int(issue.get("count") or 1),
                "message": "the header has names the contract does not declare, masked: not one column "
                "of the contract is in it, so the first line is probably a data row (add the header)",
            }
            out.append(merged[code])
    return out


def mask_report(report: dict[str, Any], contract: Contract) -> dict[str, Any]:
    """A validator's report as it may leave the data zones: no value of a pii or confidential column
    in the drift section, no data row taken for a header in the issues. (The validator itself masks
    issue examples and keeps only aggregates of those columns in the statistics.)"""
    report = dict(report)
    report["issues"] = mask_header_issues(report.get("issues") or [], contract)
    if isinstance(report.get("drift"), dict):
        report["drift"] = mask_drift(report["drift"], contract)
    return report
