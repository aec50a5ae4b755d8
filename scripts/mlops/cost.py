"""``make cost``: what a deployed stage costs per month before any traffic (idle), from its templates.

Counted from what `make deploy` creates (the data-plane template and the monitoring stack), for
each cost profile of the data plane (``mlops.cfn.cost_profile``: the stage's own is marked), priced
with AWS's public us-east-1 list prices (checked 2026-11; other regions differ by up to ~25%):
interface VPC endpoints per endpoint and zone-hour, the customer-managed key, CloudWatch alarms
and dashboards. What costs nothing idle is listed as such: on-demand DynamoDB, SQS, SNS, Lambda,
API Gateway, Parameter Store standard parameters, gateway endpoints, the dev profile's internet
gateway, Batch compute environments that scale to zero vCPUs. Storage (S3, DynamoDB, logs) grows
with use and is not idle cost, nor are the public IPv4 addresses of the dev profile's instances
while they run. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from mlops.cfn import COST_PROFILES, cost_profile, for_parameters, load_template

HOURS_PER_MONTH = 730
PRICES = {  # USD, us-east-1 list prices
    "interface_endpoint_zone_hour": 0.01,
    "kms_key_month": 1.00,
    "alarm_month": 0.10,  # a standard-resolution metric alarm
    "dashboard_month": 3.00,  # beyond the 3 free per account
}


def _subnets(resource: dict[str, Any]) -> int:
    return len(resource["Properties"].get("SubnetIds", [])) or 1


def idle_cost(
    stage: str = "dev", profile: str | None = None, prefix: str = "serverless-mlops"
) -> dict[str, Any]:
    from mlops.appinfo import functions
    from mlops.package import monitoring_template

    profile = profile or cost_profile(stage)
    resources = for_parameters(load_template(), {"Stage": stage, "CostProfile": profile})["Resources"]
    monitoring = monitoring_template(stage, prefix, functions(stage))["Resources"]
    kinds = Counter(r["Type"] for r in [*resources.values(), *monitoring.values()])
    interface = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::EC2::VPCEndpoint" and r["Properties"].get("VpcEndpointType") == "Interface"
    ]
    zone_hours = sum(_subnets(r) for r in interface) * HOURS_PER_MONTH
    zones = zone_hours // HOURS_PER_MONTH // max(len(interface), 1)
    endpoints = f"({len(interface)}, in {zones} zones)" if interface else "(none)"
    lines = {
        f"interface VPC endpoints {endpoints}": zone_hours * PRICES["interface_endpoint_zone_hour"],
        f"KMS keys ({kinds['AWS::KMS::Key']})": kinds["AWS::KMS::Key"] * PRICES["kms_key_month"],
        f"CloudWatch alarms ({kinds['AWS::CloudWatch::Alarm']})": kinds["AWS::CloudWatch::Alarm"]
        * PRICES["alarm_month"],
        f"CloudWatch dashboards ({kinds['AWS::CloudWatch::Dashboard']})": kinds["AWS::CloudWatch::Dashboard"]
        * PRICES["dashboard_month"],
    }
    total = round(sum(lines.values()), 2)
    return {
        "stage": stage,
        "profile": profile,
        "usd_per_month": total,
        "lines": {k: round(v, 2) for k, v in lines.items()},
        "share_of_endpoints": round(next(iter(lines.values())) / total, 3) if total else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="dev", choices=["dev", "prod"])
    args = parser.parse_args(argv)
    chosen = cost_profile(args.stage)
    costs = {profile: idle_cost(args.stage, profile) for profile in COST_PROFILES}
    for profile, cost in costs.items():
        mark = " (the stage's profile)" if profile == chosen else ""
        print(f"{args.stage}, cost profile {profile}{mark}:")
        for line, usd in cost["lines"].items():
            print(f"  {line:<44} ${usd:>8.2f}")
        print(f"  {'idle, per month':<44} ${cost['usd_per_month']:>8.2f}")
    standard, dev = costs["standard"]["usd_per_month"], costs["dev"]["usd_per_month"]
    saves = round(1 - dev / standard, 3) if standard else 0.0
    print(f"the dev profile saves {saves:.0%} of the idle cost (trade-off: README, 'What it costs idle')")
    print(json.dumps({"stage": args.stage, "profile": chosen, "profiles": costs, "dev_saves": saves}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
