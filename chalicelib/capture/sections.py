"""The ``monitoring`` contract section's check, registered with validation when imported
(``chalicelib.validation.sections``); ``chalicelib.bootstrap.contract_sections()`` imports it."""

from chalicelib.capture.policy import MonitoringPolicy
from chalicelib.validation.sections import register_section

register_section("monitoring", MonitoringPolicy.from_contract)
