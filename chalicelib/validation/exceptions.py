"""Errors of the validation stage."""


class ContractError(ValueError):
    """A contract is not valid. ``field`` names where, e.g. ``columns[2].min``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NoContract(LookupError):
    """No contract is stored for the dataset."""
