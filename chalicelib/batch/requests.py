"""A batch job request, parsed and checked (pure): what ``POST /batch-jobs`` takes and what a file
dropped under ``batch/requests/`` holds.

    {"model": "breast_cancer", "version": 3, "input_prefix": "batch/input/2026-11/",
     "output_prefix": "batch/output/", "shard_mb": 16, "workers": 4, "engine": "auto",
     "include_pii": ["email"]}

``version`` is optional: the champion when the job is submitted is pinned. Prefixes are keys in the
stage's data bucket: inputs under ``batch/`` or ``validated/`` (data that passed its contract),
outputs under ``batch/``; the parts go to ``<output_prefix><job_id>/``, so two jobs never share keys.
``include_pii`` names the pii columns (of the model's contract) to copy into the outputs; every
other pii column is left out (``chalicelib.batch.service.pii_choice`` checks the names).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib.batch.exceptions import InvalidRequest
from chalicelib.batch.sharding import DEFAULT_SHARD_BYTES, MIN_SHARD_BYTES
from chalicelib.ingest.uploads import DATASET_NAME

REQUESTS_PREFIX = "batch/requests/"
# Where inputs may be read from (the functions' IAM policies grant no more): batch/ and validated/.
INPUT_AREAS = ("batch/", "validated/")
DEFAULT_OUTPUT_PREFIX = "batch/output/"
ENGINES = ("auto", "onnxruntime", "sklearn")
MAX_SHARD_BYTES = 1024 * 1024 * 1024
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_PREFIX = re.compile(r"[A-Za-z0-9!_.*'()/=-]{1,512}")
_FIELDS = {
    "model",
    "version",
    "input_prefix",
    "output_prefix",
    "shard_mb",
    "shard_bytes",
    "workers",
    "engine",
    "job_id",
    "include_pii",
}


@dataclass(frozen=True)
class BatchRequest:
    model: str
    input_prefix: str
    output_prefix: str = DEFAULT_OUTPUT_PREFIX
    version: int | None = None
    shard_bytes: int = DEFAULT_SHARD_BYTES
    workers: int | None = None
    engine: str = "auto"
    include_pii: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def job_output_prefix(self, job_id: str) -> str:
        return f"{self.output_prefix}{job_id}/"

    @classmethod
    def parse(cls, doc: Any) -> BatchRequest:
        if not isinstance(doc, dict):
            raise InvalidRequest(
                "the request must be a JSON object with model, input_prefix and output_prefix"
            )
        unknown = sorted(set(doc) - _FIELDS)
        if unknown:
            raise InvalidRequest(f"{unknown[0]}: unknown field (expected some of {sorted(_FIELDS)})")
        model = doc.get("model")
        if not isinstance(model, str) or not DATASET_NAME.fullmatch(model):
            raise InvalidRequest("model: give the model's name (1-63 lowercase letters, digits, '-' or '_')")
        version = doc.get("version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise InvalidRequest("version: a version number (1, 2, 3...), or leave it out for the champion")
        input_prefix = _prefix(doc.get("input_prefix"), "input_prefix")
        if not input_prefix.startswith(INPUT_AREAS):
            raise InvalidRequest(
                f"input_prefix: {input_prefix!r} is outside the areas batch jobs read: files you put under "
                "batch/ (e.g. batch/input/2026-11/) or data that passed its contract, under validated/"
            )
        if input_prefix.startswith(("batch/requests/", "batch/jobs/")):
            raise InvalidRequest(
                f"input_prefix: {input_prefix!r} is where requests and plans live; use another"
            )
        output_prefix = _prefix(doc.get("output_prefix", DEFAULT_OUTPUT_PREFIX), "output_prefix")
        if not output_prefix.endswith("/"):
            output_prefix += "/"
        if not output_prefix.startswith("batch/"):
            raise InvalidRequest(
                f"output_prefix: {output_prefix!r} must be under batch/ (e.g. batch/output/)"
            )
        if output_prefix.startswith(input_prefix) or input_prefix.startswith(output_prefix):
            raise InvalidRequest(
                "output_prefix: must not overlap input_prefix (the parts would become inputs)"
            )
        shard_bytes = _shard_bytes(doc)
        workers = doc.get("workers")
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 1000
        ):
            raise InvalidRequest("workers: a number of workers from 1 to 1000 (capped by BATCH_MAX_WORKERS)")
        engine = doc.get("engine", "auto")
        if engine not in ENGINES:
            raise InvalidRequest(f"engine: {engine!r} is not one of {', '.join(ENGINES)}")
        return cls(model, input_prefix, output_prefix, version, shard_bytes, workers, engine, _names(doc))


def _names(doc: dict[str, Any]) -> tuple[str, ...]:
    names = doc.get("include_pii", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise InvalidRequest(
            'include_pii: a list of pii column names to copy into the output, e.g. ["email"] '
            "(leave it out to copy none)"
        )
    if len(set(names)) != len(names):
        raise InvalidRequest("include_pii: names a column twice")
    return tuple(names)


def _prefix(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _PREFIX.fullmatch(value) or value.startswith("/") or ".." in value:
        raise InvalidRequest(f"{name}: a key prefix in the data bucket, like 'batch/input/2026-11/'")
    return value


def _shard_bytes(doc: dict[str, Any]) -> int:
    if "shard_bytes" in doc and "shard_mb" in doc:
        raise InvalidRequest("shard_bytes: give shard_bytes or shard_mb, not both")
    if "shard_mb" in doc:
        value = doc["shard_mb"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1024:
            raise InvalidRequest("shard_mb: a size in MiB from 1 to 1024 (default 16)")
        return int(value * 1024 * 1024)
    value = doc.get("shard_bytes", DEFAULT_SHARD_BYTES)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_SHARD_BYTES <= value <= MAX_SHARD_BYTES
    ):
        raise InvalidRequest(f"shard_bytes: a size in bytes from {MIN_SHARD_BYTES} to {MAX_SHARD_BYTES}")
    return value


def job_id_from_key(key: str) -> str:
    """A dropped request ``batch/requests/<name>.json`` is job ``<name>``."""
    name = key[len(REQUESTS_PREFIX) :] if key.startswith(REQUESTS_PREFIX) else key
    name = name.removesuffix(".json")
    if not JOB_ID.fullmatch(name):
        raise InvalidRequest(
            f"{key}: the file name is the job id: 1-64 letters, digits, '-' or '_', like batch/requests/nightly-42.json"
        )
    return name


def choose_engine(requested: str, version_doc: dict[str, Any]) -> tuple[str, str]:
    """onnxruntime, or scikit-learn where the benchmark shows ORT slower (deep random forests).

    Returns the engine and the reason, which the job records."""
    artifacts = version_doc.get("artifacts") or {}
    has_joblib = "model.joblib" in artifacts
    if requested == "onnxruntime":
        return "onnxruntime", "asked for"
    if requested == "sklearn":
        if not has_joblib:
            raise InvalidRequest(
                "engine: this version has no model.joblib (trained before it was published); use onnxruntime"
            )
        return "sklearn", "asked for"
    family = version_doc.get("family")
    params = ((version_doc.get("lineage") or {}).get("parameters") or {}).get("model", {}).get(
        "params", {}
    ) or {}
    depth = params.get("max_depth")
    if family == "random_forest" and has_joblib and (depth is None or int(depth) >= 8):
        return (
            "sklearn",
            "deep random forest: onnxruntime is 2-4x slower than scikit-learn in batch (docs/BENCHMARKS.md)",
        )
    return "onnxruntime", f"{family or 'this model'}: onnxruntime is as fast or faster in batch"
