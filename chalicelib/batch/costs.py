"""What a batch job cost: every worker-second its attempts used, priced at spot and on-demand rates.

**Worker-seconds** are counted per attempt (one worker process: an AWS Batch array child, or a
local child process, and every retry of it), from the attempt's own records in the jobs store
(``jobs.worker_sk``): ``started``, when the process started (so the interpreter's start and the
model's load count), and ``seen``, its latest record (at start, then every ``HEARTBEAT_S``, after
each shard, and when it ends). An attempt is charged:

* from ``started`` to its last record, if it ended by itself (``state`` exited or released: the
  worker's last act);
* from ``started`` to now, while it is running, but never beyond ``SILENCE_S`` after its last
  record: an attempt that stops reporting (killed, its instance reclaimed) is charged until then,
  the latest it can have been alive without its next record arriving. So a killed attempt is
  over-charged by at most ``SILENCE_S``; never under-charged.

A job's worker-seconds are the sum over its attempts, whatever its state: succeeded, partial,
failed, still running, and attempts that start after it ended (a retry that finds nothing to do)
included. Nothing is frozen when the job finishes: the cost is computed from the attempts each time
it is read, and ``complete`` says when it can no longer grow (the job has ended and no attempt is
running). What is not counted: an attempt killed before its first record (the interpreter's first
second), and on AWS the container's start before the interpreter (image pull, instance boot).

**Prices** are per vCPU-hour, derived from one general-purpose instance (m6i.large: 2 vCPU, 8 GiB)
in us-east-1: on-demand USD 0.096 an hour; spot about USD 0.035 an hour (the typical
capacity-optimized price, about 64% off; it moves with demand). A worker is one vCPU with 2 GiB
(the job definition), so a worker-hour is priced at half the instance's hourly rate. Override the
rates with ``BATCH_PRICE_SPOT_VCPU_HOUR`` and ``BATCH_PRICE_ON_DEMAND_VCPU_HOUR`` for your region
and instance types (docs/batch.md). Lambda, SQS, S3 and DynamoDB requests are not counted: for a
job of a million rows they are cents.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.batch.jobs import FINAL, GONE, HEARTBEAT_S, is_running

INSTANCE = "m6i.large"
REGION = "us-east-1"
INSTANCE_VCPUS = 2
ON_DEMAND_INSTANCE_HOUR = 0.096
SPOT_INSTANCE_HOUR = 0.035
WORKER_VCPUS = 1
# How long after its last record a silent attempt is charged: one heartbeat, and a second for a
# beat's own delay (the write of the record that did not arrive).
SILENCE_S = HEARTBEAT_S + 1.0
SIGNIFICANT = 6  # digits the API's dollar figures keep (a micro-dollar job is not $0)
SMALLEST_USD = 0.000001  # below this a figure reads "< $0.000001"


def rates(environ: Mapping[str, str] | None = None) -> dict[str, float]:
    """USD per vCPU-hour at spot and on-demand prices."""
    env = os.environ if environ is None else environ
    return {
        "spot": float(env.get("BATCH_PRICE_SPOT_VCPU_HOUR", SPOT_INSTANCE_HOUR / INSTANCE_VCPUS)),
        "on_demand": float(
            env.get("BATCH_PRICE_ON_DEMAND_VCPU_HOUR", ON_DEMAND_INSTANCE_HOUR / INSTANCE_VCPUS)
        ),
    }


def significant(amount: float, digits: int = SIGNIFICANT) -> float:
    """``amount`` to ``digits`` significant digits (not decimals: 0.0000213 stays 0.0000213)."""
    return float(f"{amount:.{digits}g}")


def usd(amount: float) -> str:
    """A dollar figure as a person reads it: cents from a dollar up, else three significant digits
    (``$0.0000213``), ``$0`` for nothing and ``< $0.000001`` below a micro-dollar; never a tiny
    cost shown as ``$0.000000``."""
    if amount < 0 or not math.isfinite(amount):
        raise ValueError(f"not an amount of money: {amount!r}")
    if amount == 0:
        return "$0"
    if amount < SMALLEST_USD:
        return "< $0.000001"
    rounded = significant(amount, 3)  # first, so 0.99951 reads $1.00, not $1.000
    if rounded >= 1:
        return f"${amount:,.2f}"
    decimals = 2 - math.floor(math.log10(rounded))
    return f"${rounded:.{decimals}f}"


def estimate(
    worker_seconds: float, vcpus_per_worker: int = WORKER_VCPUS, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The compute cost of ``worker_seconds`` at spot and on-demand rates, and what spot saved (USD,
    percent): figures to ``SIGNIFICANT`` digits, and as text (``usd``)."""
    if worker_seconds < 0:
        raise ValueError("worker_seconds cannot be negative")
    price = rates(environ)
    vcpu_hours = worker_seconds * vcpus_per_worker / 3600.0
    spot = vcpu_hours * price["spot"]
    on_demand = vcpu_hours * price["on_demand"]
    return {
        "worker_seconds": round(worker_seconds, 3),
        "vcpu_hours": significant(vcpu_hours),
        "spot_usd": significant(spot),
        "on_demand_usd": significant(on_demand),
        "saving_usd": significant(on_demand - spot),
        "saving_percent": round(100.0 * (on_demand - spot) / on_demand, 1) if on_demand else 0.0,
        "spot": usd(spot),
        "on_demand": usd(on_demand),
        "rates_usd_per_vcpu_hour": price,
        "basis": f"{INSTANCE} {REGION}, {vcpus_per_worker} vCPU per worker",
    }


def attempt_seconds(attempt: Mapping[str, Any], now: float) -> float:
    """The seconds one attempt is charged at ``now`` (epoch seconds): see the module's docstring."""
    seen = float(attempt.get("seen", 0))
    started = float(attempt.get("started", seen))  # a record from before attempts were timed: none
    end = seen if attempt.get("state") in GONE else max(seen, min(now, seen + SILENCE_S))
    return max(0.0, end - started)


def job_cost(
    job: Mapping[str, Any],
    attempts: Iterable[Mapping[str, Any]],
    now: float,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What the job has cost by ``now``, from its attempts' records: ``worker_seconds``, ``attempts``
    and ``cost`` (the estimate, ``complete`` once it can no longer grow, and ``as_of``)."""
    attempts = list(attempts)
    seconds = round(math.fsum(attempt_seconds(a, now) for a in attempts), 3)  # what is shown is priced
    complete = job.get("status") in FINAL and not any(is_running(a, now) for a in attempts)
    as_of = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
    return {
        "worker_seconds": seconds,
        "attempts": len(attempts),
        "cost": {**estimate(seconds, environ=environ), "complete": complete, "as_of": as_of},
    }
