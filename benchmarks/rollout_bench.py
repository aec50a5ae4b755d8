"""Rollout replay benchmark (issue 17, item 4): do the guards roll bad releases back, and let good ones through?

    .venv/bin/python benchmarks/rollout_bench.py           # 10 seeds of every release kind
    .venv/bin/python benchmarks/rollout_bench.py --quick   # 1 seed: under a minute

Real parts only. Each release is a model version built by the training job's own code
(``training.main.build_candidate``: scikit-learn, ONNX export, parity check) on the bundled breast
cancer table, stored with its checksums in the in-memory registry and artifact store, and served by
the real ``Predictor`` (onnxruntime sessions, the deterministic rollout split, capture of every
answer by the real ``Capturer``); the real evaluator (``chalicelib.rollout.service.advance_rollouts``)
judges the captured records and the outcomes, steps, completes or aborts through the registry's
rollout changes. Time is simulated: each evaluation window is ``WINDOW_MIN`` minutes of traffic
(``REQUESTS`` one-record requests spread evenly over it; the champion pointer's cache TTL runs on the
same simulated clock), then the evaluator runs once, as its 5-minute schedule would. Every request's
true label arrives as an outcome within the window.

The champion: a logistic regression trained on the table. The releases, each rolled out as a canary
(10%, then 100%, each step baked ``BAKE_MIN`` minutes) with the default guards:

bad, each in a way the offline gates on the holdout would not all see:

* ``segment``: a random forest trained with the labels of one segment (the largest third of
  ``mean_radius``) inverted: right elsewhere, badly wrong there;
* ``failing``: a good model whose input schema refuses a value range the champion takes (the top
  15% of ``mean_area``): those requests fail on it;
* ``slow``: a good model with an expensive dead-end computation spliced into its graph (a chain of
  1024x1024 matrix products whose result is multiplied by zero): same answers, ~5 ms more per call;
* ``collapse``: a logistic regression trained where 98% of the labels were set to one class: it
  predicts that class for (nearly) everyone.

good: logistic regressions with other regularisation on a bootstrap resample, a random forest and a
gradient-boosted model, each trained on the true labels.

Measured per release: rolled back or completed; the guard that fired; the share of the requests
served before the abort that the bad version answered (goal: no more than the first step's share);
the evaluation windows from the first with enough data (the breach is present from the first
request) to the abort (goal: within one); requests that failed (goal: none, during any transition).
The tables go to stdout; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# The predictor logs every candidate failure (a warning per request of the failing release): not here.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
sys.path[:0] = [str(ROOT), str(ROOT / "jobs"), str(ROOT / "scripts")]

from machine import machine  # noqa: E402

from mlops.releases import BAD, GOOD, MODEL, champion_release, contract, release, stored, table  # noqa: E402

BUCKET = "models"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WINDOW_MIN = 5
BAKE_MIN = 10
REQUESTS = 1500  # per evaluation window: ~150 reach a 10% canary (the guards judge from 100 pairs)
MAX_WINDOWS = 12
ROLLOUT = {"strategy": "canary", "canary_percent": 10, "bake": f"{BAKE_MIN}m"}


# --- the world ------------------------------------------------------------------------------------


@dataclass
class SimClock:
    now: datetime = T0

    def monotonic(self) -> float:
        return (self.now - T0).total_seconds()

    def text(self) -> str:
        from chalicelib.capture.records import timestamp

        return timestamp(self.now)


@dataclass
class World:
    clock: SimClock = field(default_factory=SimClock)

    def __post_init__(self) -> None:
        from chalicelib.adapters.memory.artifacts import MemoryArtifacts
        from chalicelib.adapters.memory.capture import MemoryCapture
        from chalicelib.adapters.memory.contracts import MemoryContractStore
        from chalicelib.adapters.memory.notifier import MemoryNotifier
        from chalicelib.adapters.memory.outcomes import MemoryOutcomeStore
        from chalicelib.adapters.memory.registry import MemoryRegistry
        from chalicelib.capture.service import Capturer
        from chalicelib.serving.predict import Predictor

        self.registry = MemoryRegistry(clock=lambda: self.clock.now)
        self.artifacts = MemoryArtifacts()
        self.capture = MemoryCapture()
        self.contracts = MemoryContractStore()
        self.contracts.put(contract(rollout=ROLLOUT))
        self.outcomes = MemoryOutcomeStore()
        self.notifier = MemoryNotifier()
        capturer = Capturer(
            self.capture, self.contracts, self.capture, clock=self.clock.monotonic, now=self.clock.text
        )
        self.predictor = Predictor(
            self.registry, self.artifacts, clock=self.clock.monotonic, capture=capturer
        )

    def register(self, artifacts: dict[str, bytes], fields: dict[str, Any]) -> int:
        where = stored(artifacts, self.artifacts.put, BUCKET, str(fields["run_id"]))
        version, _ = self.registry.register_version(MODEL, {**fields, **where})
        return version


# --- one rollout ----------------------------------------------------------------------------------


def _records(header: list[str], rows: list[list[str]]) -> tuple[list[dict[str, Any]], list[int]]:
    features = [h for h in header if h not in ("row_id", "diagnosis")]
    index = {h: i for i, h in enumerate(header)}
    records = [{name: float(row[index[name]]) for name in features} for row in rows]
    labels = [int(row[index["diagnosis"]]) for row in rows]
    return records, labels


def rollout_once(
    kind: str, seed: int, built: dict[str, tuple[dict[str, bytes], dict[str, Any]]]
) -> dict[str, Any]:
    from chalicelib.capture.records import new_request_id
    from chalicelib.monitoring.outcomes import Outcome
    from chalicelib.registry import rollout as rules
    from chalicelib.rollout.service import RolloutPorts, advance_rollouts

    world = World()
    champion = world.register(*built["champion"])
    world.registry.set_status(MODEL, champion, "approved", "bench", "the champion")
    world.registry.promote(MODEL, champion, "bench", "the champion", expected_champion=None)
    candidate = world.register(*built[f"{kind}-{seed}"])
    world.registry.await_approval(
        MODEL,
        candidate,
        "bench",
        "gates passed",
        {"decision": "approval", "evaluated_against": champion},
        "candidate",
        champion,
    )
    policy = rules.parse_rollout_policy(ROLLOUT)
    state, event = rules.start(MODEL, 1, candidate, champion, policy.schedule, policy.guards,
                               world.clock.text(), "bench", f"roll out {kind}", "pending_approval")  # fmt: skip
    world.registry.start_rollout(state, event, "pending_approval")
    ports = RolloutPorts(registry=world.registry, capture=world.capture, outcomes=world.outcomes,
                         contracts=world.contracts, notifier=world.notifier)  # fmt: skip

    header, rows = table()
    records, labels = _records(header, rows)
    rng = np.random.default_rng(seed)
    served: Counter[str] = Counter()
    failed = 0
    first_judged: int | None = None
    ended: dict[str, Any] | None = None
    step = WINDOW_MIN * 60 / REQUESTS
    for window in range(1, MAX_WINDOWS + 1):
        received = []
        for _ in range(REQUESTS):
            world.clock.now += timedelta(seconds=step)
            i = int(rng.integers(0, len(records)))
            request_id = new_request_id()
            try:
                answer = world.predictor.predict(MODEL, [records[i]], None, request_id=request_id)
            except Exception:  # any failure, whatever its kind: the goal is none
                failed += 1
                continue
            served["candidate" if answer["version"] == candidate else "champion"] += 1
            received.append((labels[i], request_id))
        # The window's true labels arrive together at its end (one stored object per arrival).
        batch = [Outcome(MODEL, y, world.clock.now, f"api:{rid}", rid, 0) for y, rid in received]
        world.outcomes.add(MODEL, batch, f"bench-{window}")
        summary = advance_rollouts(ports, world.clock.now)
        pointer = world.registry.rollout(MODEL) or {}
        if first_judged is None and _judged(summary):
            first_judged = window
        if pointer.get("status") in rules.ENDED:
            ended = pointer
            break
    events = world.registry.rollout_events(MODEL)
    abort = next((e for e in events if e["action"] == "abort"), None)
    total = served["candidate"] + served["champion"]
    return {
        "kind": kind,
        "seed": seed,
        "bad": kind in BAD,
        "outcome": (ended or {}).get("status", "running"),
        "guard": abort.get("guard") if abort else None,
        "windows": window,
        "windows_to_abort": (window - first_judged + 1) if abort and first_judged else None,
        "candidate_share": served["candidate"] / total if total else 0.0,
        "requests": total + failed,
        "failed": failed,
        "champion_after": world.registry.champion(MODEL),
        "candidate_version": candidate,
    }


def _judged(summary: dict[str, Any]) -> bool:
    """Whether the evaluator had enough evidence to judge this window: it acted, or some guard's
    figures say it had ``min_requests`` pairs."""
    found = summary.get(MODEL) or {}
    if found.get("action") in ("abort", "step", "complete"):
        return True
    return bool((found.get("figures") or {}).get("sufficient"))


# --- main ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed of each release: under a minute")
    parser.add_argument("--seeds", type=int, default=None)
    args = parser.parse_args(argv)
    seeds = args.seeds or (1 if args.quick else 10)
    started = time.perf_counter()
    built = {"champion": champion_release()}
    for kind in (*BAD, *GOOD):
        for seed in range(seeds):
            built[f"{kind}-{seed}"] = release(kind, seed)
    build_s = time.perf_counter() - started
    results = [rollout_once(kind, seed, built) for kind in (*BAD, *GOOD) for seed in range(seeds)]
    print(
        f"{'release':<12} {'seed':>4} {'outcome':<10} {'guard':<16} {'windows':>7} {'to abort':>8} {'cand. share':>11} {'failed':>6}"
    )
    for r in results:
        print(f"{r['kind']:<12} {r['seed']:>4} {r['outcome']:<10} {r['guard']!s:<16} {r['windows']:>7} "
              f"{r['windows_to_abort']!s:>8} {r['candidate_share']:>11.3f} {r['failed']:>6}")  # fmt: skip
    bad = [r for r in results if r["bad"]]
    good = [r for r in results if not r["bad"]]
    rolled_back = [r for r in bad if r["outcome"] == "aborted"]
    summary = {
        "benchmark": "rollout",
        "machine": machine(),
        "date": datetime.now(UTC).date().isoformat(),
        "seeds": seeds,
        "requests_per_window": REQUESTS,
        "window_minutes": WINDOW_MIN,
        "bake_minutes": BAKE_MIN,
        "bad_releases": len(bad),
        "bad_rolled_back": len(rolled_back),
        "bad_rolled_back_share": round(len(rolled_back) / len(bad), 4) if bad else None,
        "bad_by_kind": {k: sum(1 for r in rolled_back if r["kind"] == k) for k in BAD},
        "guards_fired": dict(Counter(str(r["guard"]) for r in rolled_back)),
        "mean_bad_share_before_abort": round(
            sum(r["candidate_share"] for r in rolled_back) / len(rolled_back), 4
        )
        if rolled_back
        else None,
        "max_bad_share_before_abort": round(max((r["candidate_share"] for r in rolled_back), default=0.0), 4),
        "first_step_share": 0.10,
        "max_windows_to_abort": max((r["windows_to_abort"] or 99 for r in rolled_back), default=None),
        "good_releases": len(good),
        "good_completed": sum(1 for r in good if r["outcome"] == "completed"),
        "failed_requests": sum(r["failed"] for r in results),
        "requests": sum(r["requests"] for r in results),
        "build_seconds": round(build_s, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
