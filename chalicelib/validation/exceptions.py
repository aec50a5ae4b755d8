"""Errors of the validation stage."""

from chalicelib.errors import InvalidInput, NotFound, ValidationError


class ContractError(ValidationError, InvalidInput):
    """A contract is not valid. ``field`` names where, e.g. ``columns[2].min``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NoContract(ValidationError, NotFound):
    """No contract is stored for the dataset."""


class SpillLimitExceeded(ValidationError):
    """The duplicate checks would write more than their limit to local disk (not the caller's
    mistake as such: the validator reports it as ``CAPACITY_EXCEEDED``)."""

    def __init__(self, limit: int, needed: int) -> None:
        super().__init__(f"the duplicate checks need more than {limit:,} bytes of local disk")
        self.limit = limit
        self.needed = needed
