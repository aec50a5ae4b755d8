"""What a candidate carries about where it comes from, shared by the training job (which writes it)
and the promotion stage (which reads it). Pure standard library: both sides import it.

* ``UPLOAD_COLUMN``: the column of ``holdout.csv`` naming, for each row, the upload it came from (the
  ``upload_id`` of its object in the run's data snapshot, else the object's key; empty when unknown).
  The name cannot be a contract column (``#`` is outside their grammar), so it never collides. The
  evaluator splits the holdout by it into the rows of uploads the champion was trained on and the
  rows of uploads that arrived since (``chalicelib.registry.scoring``).
* ``build_fingerprint``: what decides the model a run builds: its data snapshot (``data_hash``), the
  contract's columns as the model reads them (types, classifications, bounds, allowed values, which
  are features; the target and the row id, which fixes the split) and the model and split settings.
  Two runs with the same fingerprint build the same model (training is seeded), so a decision a
  person took about one (a rollback, a rejection) holds for the other (``chalicelib.registry.decisions``).
  Descriptions, validation-only rules (patterns, uniqueness, lengths), the promotion policy and the
  retrain triggers are left out: changing them changes no model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.training.settings import TrainingSettings
from chalicelib.validation.contract import Contract

UPLOAD_COLUMN = "#upload"
# Column properties that change what a model learns or how its rows are read.
_COLUMN_KEYS = ("name", "type", "classification", "nullable", "min", "max", "allowed", "feature")


def upload_of(data_object: Mapping[str, Any]) -> str:
    """The upload a snapshot object stands for: its ``upload_id``, else its key ("" if neither)."""
    return str(data_object.get("upload_id") or data_object.get("key") or "")


def uploads_of(data_objects: Iterable[Mapping[str, Any]] | None) -> list[str]:
    """The uploads of a data snapshot's objects (a run's ``data_objects``), in order, without blanks."""
    return [u for u in (upload_of(o) for o in data_objects or []) if u]


def build_fingerprint(data_hash: str, contract: Contract, training: TrainingSettings) -> str:
    """sha256 of what decides the model: the data snapshot, the columns as read, model and split."""
    doc = {
        "data_hash": data_hash,
        "task": contract.task,
        "target": contract.target,
        "row_id": contract.row_id,
        "columns": [
            {key: _plain(getattr(column, key)) for key in _COLUMN_KEYS} for column in contract.columns
        ],
        "model": {"family": training.model.family, "params": dict(training.model.params)},
        "split": {"validation": training.split.validation, "holdout": training.split.holdout},
    }
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
