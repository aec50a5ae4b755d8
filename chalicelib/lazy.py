"""A module imported on first use, for the app's cold start.

Every Lambda function of a Chalice app imports ``app.py`` whole. Importing every stage there (the
validator, the training kickoff, the promotion evaluator and Powertools' batch utilities) costs about
0.15 s that, say, the API function answering ``/predict`` never needs. ``LazyModule`` stands in for a
module and imports it on the first attribute access (thread-safe: the import lock serialises it).
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any


class LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name} ({'imported' if self._module else 'not imported'})>"
