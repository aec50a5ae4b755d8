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
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from chalicelib.batch.exceptions import InvalidRequest
from chalicelib.batch.sharding import DEFAULT_SHARD_BYTES, MIN_SHARD_BYTES
from chalicelib.http import MAX_VERSION, BadRequest, Body
from chalicelib.ingest.uploads import DATASET_NAME

REQUESTS_PREFIX = "batch/requests/"
# Where inputs may be read from (the functions' IAM policies grant no more): batch/ and validated/.
INPUT_AREAS = ("batch/", "validated/")
DEFAULT_OUTPUT_PREFIX = "batch/output/"
ENGINES = ("auto", "onnxruntime", "sklearn")
MIB = 1024 * 1024
MAX_SHARD_BYTES = 1024 * MIB
MAX_WORKERS = 1000
MAX_PII_COLUMNS = 1000
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_PREFIX = r"^[A-Za-z0-9!_.*'()/=-]{1,512}\Z"
_PREFIX_HELP = "a key prefix in the data bucket, like 'batch/input/2026-11/'"


class BatchRequestBody(Body):
    """What ``POST /batch-jobs`` and a dropped request file hold: each field's type and range.
    How fields relate (areas, overlap, one shard size) is checked by ``BatchRequest.parse``."""

    model: Annotated[
        str,
        Meta(
            pattern=rf"^(?:{DATASET_NAME.pattern.strip('^$')})\Z",
            description="the model's name (1-63 lowercase letters, digits, '-' or '_')",
        ),
    ]
    input_prefix: Annotated[
        str, Meta(pattern=_PREFIX, description=_PREFIX_HELP + ", under batch/ or validated/")
    ]
    output_prefix: Annotated[
        str, Meta(pattern=_PREFIX, description=_PREFIX_HELP + ", under batch/ (default batch/output/)")
    ] = DEFAULT_OUTPUT_PREFIX
    version: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=MAX_VERSION,
                description="a version number (1, 2, 3...), or leave it out for the champion",
            ),
        ]
        | None
    ) = None
    shard_mb: (
        Annotated[
            float,
            Meta(
                ge=MIN_SHARD_BYTES / MIB,
                le=1024,
                description="a shard size in MiB, at most 1024 (default 16; at least 1 KiB)",
            ),
        ]
        | None
    ) = None
    shard_bytes: (
        Annotated[
            int,
            Meta(
                ge=MIN_SHARD_BYTES,
                le=MAX_SHARD_BYTES,
                description=f"a shard size in bytes from {MIN_SHARD_BYTES} to {MAX_SHARD_BYTES}",
            ),
        ]
        | None
    ) = None
    workers: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=MAX_WORKERS,
                description=f"a number of workers from 1 to {MAX_WORKERS} (capped by BATCH_MAX_WORKERS)",
            ),
        ]
        | None
    ) = None
    engine: Annotated[
        Literal["auto", "onnxruntime", "sklearn"],
        Meta(description=f"one of {', '.join(ENGINES)}"),
    ] = "auto"
    include_pii: Annotated[
        list[Annotated[str, Meta(min_length=1, max_length=128)]],
        Meta(
            max_length=MAX_PII_COLUMNS,
            description='a list of pii column names to copy into the output, e.g. ["email"] '
            "(leave it out to copy none)",
        ),
    ] = msgspec.field(default_factory=list)


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
        """A request document (or its declared body, already checked) -> the request, or
        ``InvalidRequest`` naming the field."""
        if not isinstance(doc, BatchRequestBody):
            try:
                doc = BatchRequestBody.parse(doc)
            except BadRequest as exc:
                raise InvalidRequest(str(exc)) from None
        input_prefix = _prefix(doc.input_prefix, "input_prefix")
        if not input_prefix.startswith(INPUT_AREAS):
            raise InvalidRequest(
                f"input_prefix: {input_prefix!r} is outside the areas batch jobs read: files you put under "
                "batch/ (e.g. batch/input/2026-11/) or data that passed its contract, under validated/"
            )
        if input_prefix.startswith(("batch/requests/", "batch/jobs/")):
            raise InvalidRequest(
                f"input_prefix: {input_prefix!r} is where requests and plans live; use another"
            )
        output_prefix = _prefix(doc.output_prefix, "output_prefix")
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
        if doc.shard_bytes is not None and doc.shard_mb is not None:
            raise InvalidRequest("shard_bytes: give shard_bytes or shard_mb, not both")
        shard_bytes = (
            int(doc.shard_mb * MIB)
            if doc.shard_mb is not None
            else doc.shard_bytes
            if doc.shard_bytes is not None
            else DEFAULT_SHARD_BYTES
        )
        if len(set(doc.include_pii)) != len(doc.include_pii):
            raise InvalidRequest("include_pii: names a column twice")
        return cls(
            doc.model,
            input_prefix,
            output_prefix,
            doc.version,
            shard_bytes,
            doc.workers,
            doc.engine,
            tuple(doc.include_pii),
        )


def _prefix(value: str, name: str) -> str:
    if value.startswith("/") or ".." in value:
        raise InvalidRequest(f"{name}: {_PREFIX_HELP}, without a leading '/' or '..'")
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
