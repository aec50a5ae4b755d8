"""Scoring with ONNX: input schemas, model sessions. Shared by the promotion evaluator and /predict."""

from chalicelib.serving.model import IntegrityError, OnnxModel, Scores, verify
from chalicelib.serving.schema import InputSchema, InvalidInput, Problem

__all__ = ["InputSchema", "IntegrityError", "InvalidInput", "OnnxModel", "Problem", "Scores", "verify"]
