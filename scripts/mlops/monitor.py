"""``mlops monitor MODEL``: a model's health per window, through the HTTP API (``MLOPS_TOKEN``).

    mlops monitor breast_cancer [--from 2026-12-01T00:00Z] [--to ...] [--json]

One row per window: records served, invalid share, p99 latency, the share of features drifted, the
prediction drift, input quality and, once outcomes cover it, the primary metric with its interval
and the label coverage; a flag on each figure that breaches its rule (``!``) or cannot be judged
yet (``?``). Under the table, each figure's trend over the windows at a glance, then the breaches.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from collections.abc import Sequence
from typing import Any

from mlops import models  # models.call at call time: one place to stand in for the HTTP API

BARS = "▁▂▃▄▅▆▇█"
MARKS = {"breach": "!", "insufficient_data": "?", "ok": " "}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    monitor = subparsers.add_parser(
        "monitor", help="a model's health per window: volume, drift, quality, performance, breaches"
    )
    monitor.add_argument("model")
    monitor.add_argument("--from", dest="start", help="ISO 8601 (default: 24 hours before --to)")
    monitor.add_argument("--to", dest="end", help="ISO 8601 (default: now)")
    monitor.add_argument("--json", action="store_true", help="the API's answer, as JSON")
    return monitor


def run(args: argparse.Namespace) -> int:
    return models.reporting_api_errors(_run, args)


def _run(args: argparse.Namespace) -> int:
    query = {k: v for k, v in (("from", args.start), ("to", args.end)) if v}
    path = f"/models/{urllib.parse.quote(args.model)}/monitoring"
    doc = models.call("GET", path + (f"?{urllib.parse.urlencode(query)}" if query else ""))
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        print()
        return 0
    print_monitoring(doc)
    return 0


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _mark(report: dict[str, Any], kind: str) -> str:
    return MARKS.get(str(_get(report, "verdicts", kind) or _get(report, kind, "verdict")), " ")


def _pct(value: Any) -> str:
    return f"{100 * float(value):5.1f}%" if isinstance(value, int | float) else "    - "


def _num(value: Any, digits: int = 3) -> str:
    return f"{float(value):.{digits}f}" if isinstance(value, int | float) else "-"


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The figures of one window the table shows (None where the window has none)."""
    performance = report.get("performance") or {}
    return {
        "records": _get(report, "volume", "records") or 0,
        "invalid": _get(report, "errors", "invalid_rate"),
        "p99": _get(report, "latency", "p99"),
        "drifted": _get(report, "drift", "drifted_share"),
        "prediction_drift": _get(report, "prediction_drift", "psi"),
        "quality": _get(report, "quality", "quality"),
        "metric": performance.get("metric"),
        "value": performance.get("value"),
        "low": performance.get("low"),
        "high": performance.get("high"),
        "coverage": performance.get("coverage"),
    }


def sparkline(values: Sequence[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "-" * len(values)
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    return "".join(" " if v is None else BARS[int((v - low) / span * (len(BARS) - 1))] for v in values)


def print_monitoring(doc: dict[str, Any], out: Any = None) -> None:
    out = out or sys.stdout
    windows: list[dict[str, Any]] = doc.get("windows") or []
    print(f"{doc.get('model')}: {len(windows)} window(s) from {doc.get('from')} to {doc.get('to')}", file=out)
    if not windows:
        print("   no window reported yet (the monitor runs hourly on closed windows)", file=out)
    else:
        metric = next((f["metric"] for f in map(figures, windows) if f["metric"]), "metric")
        print(
            f"{'window':<15} {'ver':>3} {'records':>7} {'invalid':>7} {'p99 ms':>7} "
            f"{'drifted':>8} {'pred PSI':>9} {'quality':>8}  {metric} [interval] coverage",
            file=out,
        )
        for report in windows:
            f = figures(report)
            performance = (
                f"{_num(f['value'])} [{_num(f['low'])}, {_num(f['high'])}] {_pct(f['coverage']).strip()}"
                if f["value"] is not None
                else f"- {_pct(f['coverage']).strip()}"
            )
            print(
                f"{report.get('window', '?'):<15} {report.get('version', '-'):>3} {f['records']:>7} "
                f"{_pct(f['invalid']):>7} {_num(f['p99'], 1):>7} "
                f"{_pct(f['drifted']):>7}{_mark(report, 'drift')} {_num(f['prediction_drift']):>8}"
                f"{_mark(report, 'prediction_drift')} {_pct(f['quality']):>7}{_mark(report, 'quality')}  "
                f"{performance}{_mark(report, 'performance')}",
                file=out,
            )
        print("trends (oldest -> newest):", file=out)
        for name, key in (
            ("records", "records"),
            ("drifted", "drifted"),
            ("quality", "quality"),
            (str(metric), "value"),
        ):
            print(f"   {name:<10} {sparkline([figures(r)[key] for r in windows])}", file=out)
        print("   ! breaches its rule   ? not enough records or outcomes to judge", file=out)
    breaches = doc.get("breaches") or []
    for breach in breaches:
        print(f"breach {breach.get('kind')}: {breach.get('reason')}", file=out)
    if windows and not breaches:
        print("no sustained breach in these windows", file=out)
