"""`make cost`: the idle monthly cost follows the templates, not a number written down."""

from __future__ import annotations

from mlops.cfn import load_template
from mlops.cost import HOURS_PER_MONTH, PRICES, idle_cost


def test_the_idle_cost_counts_every_interface_endpoint_in_every_zone_of_the_template():
    resources = load_template()["Resources"].values()
    zone_months = sum(
        len(r["Properties"]["SubnetIds"])
        for r in resources
        if r["Type"] == "AWS::EC2::VPCEndpoint" and r["Properties"].get("VpcEndpointType") == "Interface"
    )
    cost = idle_cost("dev")
    endpoints = next(v for k, v in cost["lines"].items() if k.startswith("interface VPC endpoints"))
    assert endpoints == round(zone_months * HOURS_PER_MONTH * PRICES["interface_endpoint_zone_hour"], 2)
    assert cost["usd_per_month"] == round(sum(cost["lines"].values()), 2)
