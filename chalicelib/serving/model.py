"""A model version ready to score: its ONNX session, its input schema, its outputs decoded.

onnxruntime is imported here, lazily, and nothing heavier: the predict path and the promotion
evaluator both run in Lambda (onnxruntime + numpy fit its package; scikit-learn does not).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chalicelib.errors import IntegrityFailure, NotFound, ServingError
from chalicelib.serving.ports import ArtifactReader, RegistryReader
from chalicelib.serving.schema import InputSchema, InvalidInput


class IntegrityError(ServingError, IntegrityFailure, ValueError):
    """An artifact's bytes do not match the checksum the registry (or manifest) holds for it."""


class VersionNotFound(ServingError, NotFound):
    """No such registered version."""


def fetch_artifact(artifacts: ArtifactReader, doc: Mapping[str, Any], name: str, label: str) -> bytes:
    """One artifact of a registered version (its registry record ``doc``), read by the version id the
    registry recorded and verified against its SHA-256 and size: what was checked is what runs."""
    where = (doc.get("artifacts") or {}).get(name)
    if not where:
        raise IntegrityError(f"{label}: the registry records no {name}")
    stored = artifacts.read(doc["bucket"], where["key"], where.get("version_id") or None)
    if stored is None:
        raise IntegrityError(f"{label} {name}: s3://{doc['bucket']}/{where['key']} is missing")
    if not where.get("sha256"):
        raise IntegrityError(f"{label} {name}: the registry records no sha256")
    verify(f"{label} {name}", stored.data, where["sha256"], where.get("bytes"))
    return stored.data


def load_registered(artifacts: ArtifactReader, doc: Mapping[str, Any], label: str) -> OnnxModel:
    """A registered version's session: model.onnx and input_schema.json, each verified."""
    return OnnxModel(
        fetch_artifact(artifacts, doc, "model.onnx", label),
        json.loads(fetch_artifact(artifacts, doc, "input_schema.json", label)),
    )


def load_version(registry: RegistryReader, artifacts: ArtifactReader, model: str, version: int) -> OnnxModel:
    """A registered version's model and schema, each verified against the checksum on record."""
    doc = registry.version(model, version)
    if doc is None:
        raise VersionNotFound(f"{model} v{version} is not registered")
    return load_registered(artifacts, doc, f"{model} v{version}")


def verify(name: str, data: bytes, sha256: str | None, size: int | None = None) -> None:
    """Refuse bytes whose SHA-256 (and size, when known) differ from the recorded ones."""
    if size is not None and len(data) != size:
        raise IntegrityError(f"{name}: {len(data)} bytes, the manifest says {size}")
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256:
        raise IntegrityError(
            f"{name}: sha256 {digest[:16]}... does not match the manifest's {sha256[:16]}..."
        )


@dataclass(frozen=True)
class Scores:
    """Outputs for n rows: ``labels`` (n,) and ``probabilities`` (n, classes) for a classifier,
    ``predictions`` (n,) for a regressor."""

    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    predictions: np.ndarray | None = None

    @property
    def for_metrics(self) -> np.ndarray:
        """What ``chalicelib.registry.metrics`` takes: probabilities, else predictions."""
        out = self.probabilities if self.probabilities is not None else self.predictions
        assert out is not None
        return out


def session_options() -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Lambda gives a fraction of a core per 1769 MB: one thread, no spinning (spinning burns the
    # CPU the event loop and the other requests need; single rows gain nothing from threads).
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class OnnxModel:
    """One version's session and schema. Thread-safe to call (``InferenceSession.run`` is)."""

    def __init__(self, model_bytes: bytes, schema: InputSchema | Mapping[str, Any]) -> None:
        import onnxruntime as ort

        self.schema = schema if isinstance(schema, InputSchema) else InputSchema(schema)
        self.model_bytes = len(model_bytes)
        self.session = ort.InferenceSession(
            model_bytes, sess_options=session_options(), providers=["CPUExecutionProvider"]
        )
        inputs = {i.name for i in self.session.get_inputs()}
        expected = {f.onnx_input for f in self.schema.features}
        if inputs != expected:
            raise ValueError(
                f"the model's inputs {sorted(inputs)} are not the schema's features {sorted(expected)}"
            )
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.classes = list(self.schema.classes)
        # The feed is built from the schema, whose inputs were checked against the model's above, so
        # onnxruntime's per-call input-name validation (~10-20 us for 30 inputs) is skipped by calling
        # its C++ session directly where this version of onnxruntime exposes one.
        native = getattr(self.session, "_sess", None)
        self._run = native.run if native is not None and hasattr(native, "run") else self.session.run

    def run(self, feed: Mapping[str, np.ndarray]) -> Scores:
        outputs = dict(zip(self.output_names, self._run(self.output_names, dict(feed), None), strict=True))
        out = self.schema.outputs
        if self.schema.classification:
            probabilities = np.asarray(outputs[out.get("probabilities", "probabilities")], dtype=np.float64)
            labels = np.asarray(outputs[out.get("label", "label")]).reshape(-1)
            return Scores(labels=labels, probabilities=probabilities)
        predictions = np.asarray(outputs[out.get("prediction", "prediction")], dtype=np.float64).reshape(-1)
        return Scores(predictions=predictions)

    def run_finite(self, feed: Mapping[str, np.ndarray]) -> Scores:
        """``run``, refusing rows whose scores are not finite numbers: a value far outside what the
        model was trained on (1e308) can overflow its arithmetic (a linear model scales and sums),
        and NaN is no answer (nor valid JSON). ``InvalidInput`` names each such record and its
        largest number."""
        scores = self.run(feed)
        values = scores.for_metrics
        finite = np.isfinite(values) if values.ndim == 1 else np.isfinite(values).all(axis=1)
        if finite.all():
            return scores
        raise InvalidInput(self.schema.overflow_problems(feed, [int(i) for i in np.flatnonzero(~finite)]))

    def score_records(self, records: Sequence[Any]) -> Scores:
        return self.run(self.schema.encode_records(records))

    def latency_ms(
        self, feed: Mapping[str, np.ndarray], rows: int = 200, warmup: int = 20
    ) -> dict[str, float]:
        """Single-row latency of ``session.run`` over up to ``rows`` distinct rows of ``feed``: p50, p99."""
        n = len(next(iter(feed.values()))) if feed else 0
        if n == 0:
            return {}
        singles = [{k: v[i : i + 1] for k, v in feed.items()} for i in range(min(rows, n))]
        for single in singles[:warmup]:
            self.session.run(None, single)
        times = []
        for single in singles:
            started = time.perf_counter()
            self.session.run(None, single)
            times.append((time.perf_counter() - started) * 1000.0)
        return {
            "p50": float(np.percentile(times, 50)),
            "p99": float(np.percentile(times, 99)),
            "rows": len(times),
        }
