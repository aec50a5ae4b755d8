"""`make cost`: the idle monthly cost follows the templates, not a number written down."""

from __future__ import annotations

import pytest

from mlops.cfn import COST_PROFILES, for_parameters, load_template
from mlops.cost import HOURS_PER_MONTH, PRICES, idle_cost


@pytest.mark.parametrize("profile", COST_PROFILES)
def test_the_idle_cost_counts_every_interface_endpoint_in_every_zone_the_profile_creates(profile):
    resources = for_parameters(load_template(), {"Stage": "dev", "CostProfile": profile})["Resources"]
    zone_months = sum(
        len(r["Properties"]["SubnetIds"])
        for r in resources.values()
        if r["Type"] == "AWS::EC2::VPCEndpoint" and r["Properties"].get("VpcEndpointType") == "Interface"
    )
    cost = idle_cost("dev", profile)
    endpoints = next(v for k, v in cost["lines"].items() if k.startswith("interface VPC endpoints"))
    assert endpoints == round(zone_months * HOURS_PER_MONTH * PRICES["interface_endpoint_zone_hour"], 2)
    assert cost["usd_per_month"] == round(sum(cost["lines"].values()), 2)
    assert cost["profile"] == profile


def test_the_dev_profile_idles_at_a_fifth_of_the_standard_profile_or_less():
    """Issue 15, item 8: a dev profile that cuts the idle cost by at least 80%."""
    standard, dev = idle_cost("dev", "standard"), idle_cost("dev", "dev")
    assert standard["usd_per_month"] > 0
    assert dev["usd_per_month"] <= 0.2 * standard["usd_per_month"], (dev, standard)


def test_make_cost_reports_both_profiles_and_the_reduction(capsys):
    from mlops.cost import main

    assert main(["--stage", "dev"]) == 0
    import json

    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(report["profiles"]) == set(COST_PROFILES)
    assert report["profile"] in COST_PROFILES  # the one the stage deploys with
    standard, dev = (report["profiles"][p]["usd_per_month"] for p in ("standard", "dev"))
    assert report["dev_saves"] == round(1 - dev / standard, 3)
