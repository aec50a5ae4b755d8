"""Sustained breaches: when a window's verdicts become a retrain trigger (docs/monitoring.md).

One window past a threshold is weak evidence (each window's tests run at a false-alarm budget, and a
burst of odd traffic passes); the same verdict ``persistence`` windows in a row is not. A kind
(``drift``, ``quality``, ``performance``) is in sustained breach when its verdict is ``breach`` in
each of the last ``persistence`` windows of the history, and those windows follow one another with
no gap (a window's ``end`` is the next one's ``start``, when reports carry both).
``insufficient_data`` (too few records or outcomes) and ``ok`` break a run: a breach is never
inferred from silence. Prediction drift is reported but is not a trigger by itself: it follows
input drift or a changed mix of requests, and the outcomes say whether it matters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from chalicelib.capture.policy import MonitoringPolicy

KINDS = ("drift", "quality", "performance")


def verdict_of(report: Mapping[str, Any], kind: str) -> str:
    """A window's verdict for ``kind``: from its ``verdicts`` dict, else its section's ``verdict``."""
    verdicts = report.get("verdicts") or {}
    if kind in verdicts:
        return str(verdicts[kind])
    section = report.get(kind)
    if isinstance(section, Mapping) and "verdict" in section:
        return str(section["verdict"])
    return "insufficient_data"


def persistence_of(policy: MonitoringPolicy, kind: str) -> int:
    return {
        "drift": policy.drift.persistence,
        "quality": policy.quality.persistence,
        "performance": policy.performance.persistence,
    }[kind]


def _adjacent(earlier: Mapping[str, Any], later: Mapping[str, Any]) -> bool:
    end, start = earlier.get("end"), later.get("start")
    return end is None or start is None or end == start


def sustained_breaches(
    reports: Sequence[Mapping[str, Any]], policy: MonitoringPolicy
) -> list[dict[str, Any]]:
    """The kinds in sustained breach at the newest report (``reports`` oldest first), each as
    ``{"kind", "windows": [starts], "figures": {...}, "reason"}``."""
    found: list[dict[str, Any]] = []
    for kind in KINDS:
        needed = persistence_of(policy, kind)
        if len(reports) < needed:
            continue
        run = list(reports[-needed:])
        if not all(verdict_of(r, kind) == "breach" for r in run):
            continue
        if not all(_adjacent(a, b) for a, b in pairwise(run)):
            continue
        figures = [_figures(r, kind) for r in run]
        found.append(
            {
                "kind": kind,
                "windows": [r.get("start") for r in run],
                "figures": figures[-1] | {"by_window": figures},
                "reason": _reason(kind, needed, figures[-1], policy),
            }
        )
    return found


def _figures(report: Mapping[str, Any], kind: str) -> dict[str, Any]:
    section = report.get(kind)
    if not isinstance(section, Mapping):
        return {}
    if kind == "drift":
        return {
            "drifted_share": section.get("drifted_share"),
            "drifted_features": list(section.get("drifted_features") or []),
        }
    if kind == "quality":
        return {"quality": section.get("quality"), "rejected": section.get("rejected")}
    return {key: section.get(key) for key in ("metric", "value", "low", "high", "floor", "n")}


def _reason(kind: str, windows: int, figures: Mapping[str, Any], policy: MonitoringPolicy) -> str:
    run = f"{windows} window{'s' if windows > 1 else ''} in a row"
    if kind == "drift":
        features = ", ".join(figures.get("drifted_features") or []) or "none named"
        return (
            f"live inputs drifted from the training reference {run} (share of drifted features "
            f"{figures.get('drifted_share')} > {policy.drift.threshold:g}; latest: {features})"
        )
    if kind == "quality":
        return (
            f"input quality below the floor {policy.quality.floor:g} {run} "
            f"(latest {figures.get('quality')}: values the contract would reject)"
        )
    return (
        f"{figures.get('metric')} on outcomes worse than the floor {figures.get('floor')} with its whole "
        f"interval {run} (latest {figures.get('value')}, interval {figures.get('low')}..{figures.get('high')})"
    )
