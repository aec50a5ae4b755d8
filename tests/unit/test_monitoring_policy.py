"""The contract's ``monitoring`` section: defaults, every field checked, mistakes named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.capture.policy import MonitoringPolicy, parse_monitoring
from chalicelib.validation.contract import Contract
from chalicelib.validation.exceptions import ContractError


def test_an_empty_section_takes_every_documented_default() -> None:
    assert parse_monitoring({}) == MonitoringPolicy()
    assert parse_monitoring({}).to_dict()["performance"]["min_outcomes"] == 500


def test_a_policy_round_trips_through_its_dict() -> None:
    policy = parse_monitoring({"sample_rate": 0.25, "confidential": "hash", "drift": {"persistence": 3}})
    assert parse_monitoring(policy.to_dict()) == policy


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"sample_rate": 1.5}, "monitoring.sample_rate"),
        ({"sample_rate": True}, "monitoring.sample_rate"),
        ({"window_minutes": 7}, "monitoring.window_minutes"),
        ({"confidential": "keep"}, "monitoring.confidential"),
        ({"drift": {"persistance": 2}}, "monitoring.drift.persistance"),
        ({"quality": {"floor": 2}}, "monitoring.quality.floor"),
        ({"performance": {"min_outcomes": 2.5}}, "monitoring.performance.min_outcomes"),
        ({"retrain": "yes"}, "monitoring.retrain"),
        ({"windows": 60}, "monitoring.windows"),
    ],
)
def test_a_mistake_is_refused_naming_its_field(doc: dict, field: str) -> None:
    with pytest.raises(ContractError) as raised:
        parse_monitoring(doc)
    assert raised.value.field == field


@given(st.integers(min_value=5, max_value=1440))
def test_a_window_is_accepted_exactly_when_it_divides_a_day(minutes: int) -> None:
    try:
        policy = parse_monitoring({"window_minutes": minutes})
    except ContractError:
        assert 1440 % minutes
    else:
        assert 1440 % policy.window_minutes == 0


def test_storing_a_contract_checks_its_monitoring_section() -> None:
    from chalicelib import bootstrap
    from chalicelib.validation.sections import check_sections

    bootstrap.contract_sections()
    contract = Contract.parse(
        {
            "dataset": "d",
            "columns": [
                {"name": "x", "type": "float", "classification": "internal"},
                {"name": "y", "type": "integer", "classification": "internal"},
            ],
            "target": "y",
            "task": "classification",
            "monitoring": {"drift": {"threshold": -1}},
        }
    )
    with pytest.raises(ContractError) as raised:
        check_sections(contract)
    assert raised.value.field == "monitoring.drift.threshold"
