"""Checks of the contract sections that later stages own (``training``, ``promotion``).

Validation owns the contract but not what training or the registry make of their sections. Each of
those stages registers its check here when its package is imported, so a typo in its section is
refused when the contract is stored (not hours later on a spot instance or at promotion time),
and validation never imports them. Whoever stores contracts (the API, the CLI) gets the stages
imported through ``chalicelib.bootstrap.contract_sections()``.
"""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.validation.contract import EXTENSION_KEYS, Contract

# A check raises ContractError naming the field; what it returns is ignored.
SectionCheck = Callable[[Contract], object]

_CHECKS: dict[str, SectionCheck] = {}


def register_section(name: str, check: SectionCheck) -> None:
    """Make ``check`` part of storing every contract. Registering a name again replaces its check."""
    if name not in EXTENSION_KEYS:
        raise ValueError(f"{name!r} is not a contract section ({', '.join(sorted(EXTENSION_KEYS))})")
    _CHECKS[name] = check


def registered() -> list[str]:
    """The sections that have a check, in the order they run (registration order)."""
    return list(_CHECKS)


def check_sections(contract: Contract) -> None:
    """Run every registered check; the first failure's ContractError propagates."""
    for check in list(_CHECKS.values()):
        check(contract)
