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
