"""Temporary: tests/test_batch_chaos.py, moved into its layer's folder separately, imports these two
helpers from here. They live in tests/support.py; delete this module once it imports them from there.
No tests here (tests/flow/test_evaluator.py has the evaluator's)."""

from tests.support import contract_for as _contract
from tests.support import publish

__all__ = ["_contract", "publish"]
