"""The training job (AWS Batch image): contract-typed CSV -> scikit-learn pipeline -> ONNX with parity.

Modules: ``table`` (CSV -> typed columns), ``split`` (stable hashed split), ``pipeline`` (features
and the scikit-learn pipeline), ``onnx_export`` (double-precision ONNX conversion), ``core``
(train, metrics, export, parity, input schema, model card). Settings come from
``chalicelib.training.settings``, shared with the Lambda side.
"""

from .core import TrainResult, check_parity, export_onnx, input_schema, model_card, train
from .pipeline import build_pipeline
from .split import assign_split
from .table import Table, load_table

__all__ = [
    "Table",
    "TrainResult",
    "assign_split",
    "build_pipeline",
    "check_parity",
    "export_onnx",
    "input_schema",
    "load_table",
    "model_card",
    "train",
]
