"""What a batch job cost: worker-seconds priced at spot and on-demand rates (an estimate).

The price table is per vCPU-hour, derived from one general-purpose instance (m6i.large: 2 vCPU,
8 GiB) in us-east-1: on-demand USD 0.096 an hour; spot about USD 0.035 an hour (the typical
capacity-optimized price, about 64% off; it moves with demand). A worker is one vCPU with 2 GiB
(the job definition), so a worker-hour is priced at half the instance's hourly rate. Override the
rates with ``BATCH_PRICE_SPOT_VCPU_HOUR`` and ``BATCH_PRICE_ON_DEMAND_VCPU_HOUR`` for your region
and instance types (docs/batch.md). Lambda, SQS, S3 and DynamoDB requests are not counted: for a
job of a million rows they are cents.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

INSTANCE = "m6i.large"
REGION = "us-east-1"
INSTANCE_VCPUS = 2
ON_DEMAND_INSTANCE_HOUR = 0.096
SPOT_INSTANCE_HOUR = 0.035
WORKER_VCPUS = 1


def rates(environ: Mapping[str, str] | None = None) -> dict[str, float]:
    """USD per vCPU-hour at spot and on-demand prices."""
    env = os.environ if environ is None else environ
    return {
        "spot": float(env.get("BATCH_PRICE_SPOT_VCPU_HOUR", SPOT_INSTANCE_HOUR / INSTANCE_VCPUS)),
        "on_demand": float(
            env.get("BATCH_PRICE_ON_DEMAND_VCPU_HOUR", ON_DEMAND_INSTANCE_HOUR / INSTANCE_VCPUS)
        ),
    }


def estimate(
    worker_seconds: float, vcpus_per_worker: int = WORKER_VCPUS, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The job's compute cost at spot and on-demand rates, and what spot saved (USD, percent)."""
    if worker_seconds < 0:
        raise ValueError("worker_seconds cannot be negative")
    price = rates(environ)
    vcpu_hours = worker_seconds * vcpus_per_worker / 3600.0
    spot = vcpu_hours * price["spot"]
    on_demand = vcpu_hours * price["on_demand"]
    return {
        "vcpu_hours": round(vcpu_hours, 6),
        "spot_usd": round(spot, 6),
        "on_demand_usd": round(on_demand, 6),
        "saving_usd": round(on_demand - spot, 6),
        "saving_percent": round(100.0 * (on_demand - spot) / on_demand, 1) if on_demand else 0.0,
        "rates_usd_per_vcpu_hour": price,
        "basis": f"{INSTANCE} {REGION}, {vcpus_per_worker} vCPU per worker",
    }
