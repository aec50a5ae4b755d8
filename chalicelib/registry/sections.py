"""The registry's check of a contract's ``promotion`` section, registered with validation.

Importing this module registers it (``chalicelib.validation.sections``); ``chalicelib.bootstrap``
imports it wherever contracts are stored. A module of its own, not the package ``__init__``, so that
reading the registry (the predict path) does not import the policy.
"""

from chalicelib.registry.policy import PromotionPolicy
from chalicelib.validation.sections import register_section

register_section("promotion", PromotionPolicy.from_contract)
