"""The training job: ``python -m training.main --run-id R --dataset D``.

Runs as an AWS Batch job on spot capacity (or, locally, as a child process of the local cloud).
Reads the run's data manifest, verifies every object, trains, exports ONNX, checks parity, and
publishes the candidate under ``models/<dataset>/candidates/<run-id>/``; ``manifest.json`` is written
last and create-only: its arrival announces the candidate to the promotion stage.

Safe to retry: a spot reclaim re-runs the job with the same run id; every key is derived from it,
and a run whose manifest exists is done. A failure records why on the run and frees the lock.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from chalicelib import bootstrap
from chalicelib.adapters import aws
from chalicelib.adapters.aws.tagging import tags
from chalicelib.settings import Settings
from chalicelib.timeutil import now_iso
from chalicelib.training.lineage import UPLOAD_COLUMN, build_fingerprint, upload_of
from chalicelib.training.messages import run_finished_message
from chalicelib.training.ports import Contracts, RunsStore
from chalicelib.training.settings import TrainingSettings
from chalicelib.validation import Contract, numbers, privacy

from .core import check_parity, export_onnx, input_schema, model_card, train
from .table import Table, load_table

ARTIFACTS = (
    "model.onnx",
    "input_schema.json",
    "metrics.json",
    "parity.json",
    "reference_profile.json",
    "holdout.csv",
    "model_card.md",
    "lineage.json",
    "model.joblib",
)


class RunFailed(Exception):
    """The run cannot produce a candidate; the message says why."""


def candidate_prefix(dataset: str, run_id: str) -> str:
    return f"models/{dataset}/candidates/{run_id}/"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="training.main")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--dataset", required=True)
    args = parser.parse_args(argv)
    settings = bootstrap.settings()
    runs = bootstrap.runs_store()
    started = time.monotonic()
    attempt = runs.add_attempt(args.run_id)
    capacity = _capacity()
    runs.update_run(args.run_id, status="running", started_at=now_iso("seconds"), capacity=capacity)
    _say(f"run {args.run_id}: attempt {attempt} on {capacity} capacity")
    try:
        result = run_training(
            args.run_id, args.dataset, settings, runs, bootstrap.contracts(), attempt, capacity
        )
    except Exception as exc:
        reason = str(exc) if isinstance(exc, RunFailed) else f"{type(exc).__name__}: {exc}"
        _say(f"run {args.run_id} failed: {reason}")
        runs.update_run(args.run_id, status="failed", error=reason, finished_at=now_iso("seconds"))
        _finish(runs, settings, args.dataset, args.run_id, succeeded=False)
        return 1
    runs.update_run(
        args.run_id,
        status="succeeded",
        finished_at=now_iso("seconds"),
        seconds=round(time.monotonic() - started, 2),
        **result,
    )
    _finish(runs, settings, args.dataset, args.run_id, succeeded=True)
    _say(f"run {args.run_id} succeeded: {result['candidate_prefix']}")
    return 0


def run_training(
    run_id: str,
    dataset: str,
    settings: Settings,
    runs: RunsStore,
    contracts: Contracts,
    attempt: int,
    capacity: str,
) -> dict[str, Any]:
    """One attempt: train on the run's pinned data and publish the candidate (or find it published)."""
    prefix = candidate_prefix(dataset, run_id)
    existing = _manifest(settings.models_bucket, prefix)
    if existing is not None:  # an earlier attempt finished: publishing again would add nothing
        _say("candidate manifest already exists: nothing to do")
        return _summary(existing, prefix)
    run = runs.get_run(run_id)
    if run is None:
        raise RunFailed(f"no run record {run_id}")
    contract = contracts.get(dataset)
    training = TrainingSettings.from_contract(contract)
    data_manifest, sources = load_sources(settings.data_bucket, run["data_manifest_key"])
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    table = load_table(sources, contract)  # in the manifest's order: the newest upload's copy of a row wins
    _say(
        f"{table.read:,} rows read, {table.n_rows:,} kept: {table.replaced:,} replaced by a newer upload's copy"
    )
    lineage = _lineage(run, data_manifest, contract, training, started_at, attempt, capacity)
    lineage["rows"] = {"read": table.read, "kept": table.n_rows, "replaced": table.replaced}
    artifacts, fields = build_candidate(table, contract, training, lineage)
    _require_parity(settings.models_bucket, prefix, artifacts, contract, training)
    manifest = publish_candidate(settings.models_bucket, prefix, artifacts, fields, contract)
    return _summary(manifest, prefix)


def load_sources(bucket: str, manifest_key: str) -> tuple[dict[str, Any], list[bytes]]:
    """The data manifest and every object it pins (that version), each checked against its sha256."""
    s3 = aws.client("s3")
    data_manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    sources = []
    for obj in data_manifest["objects"]:
        args: dict[str, Any] = {"Bucket": bucket, "Key": obj["key"]}
        if obj.get("version_id"):
            args["VersionId"] = obj["version_id"]
        body = s3.get_object(**args)["Body"].read()
        if obj.get("sha256") and hashlib.sha256(body).hexdigest() != obj["sha256"]:
            raise RunFailed(f"{obj['key']} does not match its sha256 in the data manifest")
        sources.append(_decompressed(body))
    _say(f"loaded {len(sources)} object(s), {sum(len(s) for s in sources):,} bytes")
    return data_manifest, sources


def _lineage(
    run: dict[str, Any],
    data_manifest: dict[str, Any],
    contract: Contract,
    training: TrainingSettings,
    started_at: str,
    attempt: int,
    capacity: str,
) -> dict[str, Any]:
    """Where the candidate comes from: the run, its exact data, contract, code, parameters, libraries."""
    return {
        "run_id": run["run_id"],
        "dataset": contract.dataset,
        "data_manifest_key": run["data_manifest_key"],
        "data_hash": run["data_hash"],
        "data_objects": [
            {k: o.get(k) for k in ("key", "version_id", "sha256", "upload_id", "uploaded_at")}
            for o in data_manifest["objects"]
        ],
        "contract_version": contract.version,
        "code_version": _code_version(),
        "parameters": training.to_dict(),
        "libraries": _libraries(),
        "started_at": started_at,
        "attempts": attempt,
        "capacity": capacity,
        "trigger": run.get("trigger"),
        "reasons": run.get("reasons"),
    }


def _require_parity(
    bucket: str, prefix: str, artifacts: dict[str, bytes], contract: Contract, training: TrainingSettings
) -> None:
    """A candidate whose ONNX export disagrees with scikit-learn is not published: only its
    ``parity.json`` is kept, to show why, and the run fails."""
    parity = json.loads(artifacts["parity.json"])
    if parity.get("passed"):
        return
    _put(
        aws.client("s3"),
        bucket,
        prefix + "parity.json",
        artifacts["parity.json"],
        contract.dataset,
        contract,
        "candidate",
    )
    raise RunFailed(
        f"parity check failed: onnxruntime and scikit-learn differ by {parity.get('max_abs_diff')} "
        f"(tolerance {training.parity_tolerance}) with {parity.get('label_flips')} label flip(s); not published"
    )


def build_candidate(
    table: Table, contract: Contract, training: TrainingSettings, lineage: dict[str, Any]
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Train, export, check parity: the candidate's artifacts (name -> bytes) and manifest fields.

    When parity fails only ``parity.json`` is returned (nothing else may be published)."""
    result = train(table, contract, training)
    if lineage.get(
        "data_hash"
    ):  # what decides the model (a person's decision about one holds for its rebuilds)
        lineage = {**lineage, "fingerprint": build_fingerprint(lineage["data_hash"], contract, training)}
    onnx_bytes = export_onnx(result, contract)
    parity = check_parity(result, onnx_bytes, contract, training.parity_tolerance)
    name, value = result.primary_metric
    _say(
        f"trained {training.model.family} on {result.rows}: holdout {name} {value}; parity max diff {parity.get('max_abs_diff')}"
    )
    artifacts: dict[str, bytes] = {"parity.json": _json(parity)}
    fields = {
        "dataset": contract.dataset,
        "run_id": lineage["run_id"],
        "task": contract.task,
        "family": training.model.family,
        "primary_metric": name,
        "primary_value": value,
        "parity_max_abs_diff": parity.get("max_abs_diff"),
        "data_hash": lineage.get("data_hash"),
        "fingerprint": lineage.get("fingerprint"),
    }
    if not parity.get("passed"):
        return artifacts, fields
    metrics = {
        "primary_metric": name,
        "primary_value": value,
        "greater_is_better": training.greater_is_better,
        "splits": result.metrics,
        "rows": result.rows,
    }
    artifacts.update(
        {
            "model.onnx": onnx_bytes,
            "input_schema.json": _json(input_schema(contract, result)),
            "metrics.json": _json(metrics),
            "reference_profile.json": _json(reference_profile(table, contract)),
            "holdout.csv": holdout_csv(
                result, contract, [upload_of(o) for o in lineage.get("data_objects") or []]
            ),
            "model_card.md": model_card(result, contract, parity).encode(),
            # The fitted pipeline, for batch scoring where scikit-learn beats onnxruntime (deep
            # forests). Its sha256 is in the manifest and the registry; load it only after checking.
            "model.joblib": pipeline_bytes(result.pipeline),
        }
    )
    artifacts["lineage.json"] = _json(
        {**lineage, "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}
    )
    return artifacts, fields


def publish_candidate(
    bucket: str, prefix: str, artifacts: dict[str, bytes], fields: dict[str, Any], contract: Contract
) -> dict[str, Any]:
    """Write every artifact, then ``manifest.json`` (their sizes and SHA-256) last and create-only:
    its arrival announces the candidate. Returns the manifest that holds (an earlier attempt's, if
    one published first)."""
    s3 = aws.client("s3")
    dataset = contract.dataset
    entries = []
    for name_, data in artifacts.items():
        _put(s3, bucket, prefix + name_, data, dataset, contract, "candidate")
        entries.append(
            {
                "name": name_,
                "key": prefix + name_,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    manifest = {**fields, "artifacts": entries, "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    published = aws.put_if_absent(
        bucket,
        prefix + "manifest.json",
        _json(manifest),
        ContentType="application/json",
        Tagging=tags(dataset, contract.classification, "candidate"),
    )
    if not published:  # another attempt published first: one candidate per run, whichever wrote it
        manifest = _manifest(bucket, prefix) or manifest
    return manifest


def pipeline_bytes(pipeline: Any) -> bytes:
    import joblib

    buf = io.BytesIO()
    joblib.dump(pipeline, buf, compress=3)
    return buf.getvalue()


def reference_profile(table: Table, contract: Contract) -> dict[str, Any]:
    """The training data's drift profile, in the validator's format (new uploads are compared to it)."""
    from chalicelib.validation import drift
    from chalicelib.validation.columns import MAX_TRACKED_CATEGORIES, RESERVOIR_SIZE

    columns: dict[str, Any] = {}
    for column in contract.columns:
        if column.classification == "pii" or column.type == "timestamp":
            continue
        values = table[column.name]
        if column.type in ("integer", "float"):
            finite = values[np.isfinite(values)]
            reservoir = drift.Reservoir(capacity=RESERVOIR_SIZE, seed=0)
            reservoir.add(finite)
            columns[column.name] = drift.numeric_column_profile(
                len(values), int(np.isnan(values).sum()), reservoir
            )
        elif column.type == "boolean":
            known = values[~np.isnan(values)]
            counts = {"true": int((known == 1).sum()), "false": int((known == 0).sum())}
            columns[column.name] = drift.categorical_column_profile(
                len(values), len(values) - len(known), counts
            )
        else:
            present = [v for v in values.tolist() if v is not None]
            unique, counts_ = np.unique(np.asarray(present, dtype=str), return_counts=True)
            if len(unique) <= MAX_TRACKED_CATEGORIES:
                columns[column.name] = drift.categorical_column_profile(
                    len(values),
                    len(values) - len(present),
                    dict(zip(unique.tolist(), counts_.tolist(), strict=True)),
                )
    masked = privacy.mask_profile({"rows": table.n_rows, "columns": columns}, contract)
    assert masked is not None
    return masked


def holdout_csv(result: Any, contract: Contract, uploads: Sequence[str] = ()) -> bytes:
    """The holdout rows for the promotion stage: every column of the contract that may leave the data
    zones, whether this model uses it or not, and the upload each row came from.

    * Every column but pii ones (the evaluator scores a pii feature as missing, for both models):
      a champion that reads a column this candidate dropped, or reads one with another type, scores
      the very same rows (``chalicelib.registry.scoring``).
    * A value of a confidential text column without listed values that fewer than ``MIN_GROUP``
      training rows hold (``core.shareable_values``; for a feature, one the model did not learn) is
      written as ``privacy.MASK``, which no model knows either, so the candidate scores the row the same.
    * Numbers by the one grammar, an integral value without a decimal point (``3``, not ``3.0``)
      whatever the column's type: a champion that read the column as integers reads it still.
    * ``UPLOAD_COLUMN`` last: ``uploads[i]`` for a row read from the run's i-th data object (its
      upload id), empty when unknown; the evaluator reports the holdout in slices by it."""
    import csv

    table = result.holdout_table
    assert table is not None and table.n_rows == len(result.holdout_y)
    columns = [c for c in contract.columns if c.classification != "pii" or c.name == contract.target]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.name for c in columns] + [UPLOAD_COLUMN])
    origins = table.origins or [-1] * table.n_rows
    for i, y in enumerate(result.holdout_y):
        cells = [
            str(y.item() if hasattr(y, "item") else y)
            if column.name == contract.target
            else _holdout_cell(column.type, table[column.name][i], result.shareable.get(column.name))
            for column in columns
        ]
        origin = origins[i]
        writer.writerow([*cells, uploads[origin] if 0 <= origin < len(uploads) else ""])
    return buf.getvalue().encode()


def _holdout_cell(kind: str, value: Any, shareable: set[str] | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if kind == "boolean":
        return "true" if float(value) == 1.0 else "false"
    if kind in ("integer", "float", "timestamp"):  # timestamps as seconds since the epoch
        number = float(value)
        return numbers.write_number(number, numbers.INTEGER if number.is_integer() else numbers.FLOAT)
    text = str(value)
    return privacy.MASK if shareable is not None and text not in shareable else text


def _finish(runs: RunsStore, settings: Settings, dataset: str, run_id: str, succeeded: bool) -> None:
    coalesced = runs.release(dataset, run_id, succeeded, datetime.now(UTC))
    if coalesced:
        # Triggers waited for this run: ask the kickoff to look again now that it is over.
        url = aws.client("sqs").get_queue_url(QueueName=settings.retrain_queue)["QueueUrl"]
        aws.client("sqs").send_message(
            QueueUrl=url,
            MessageBody=json.dumps(run_finished_message(dataset, run_id, len(coalesced))),
        )


def _manifest(bucket: str, prefix: str) -> dict[str, Any] | None:
    try:
        return dict(
            json.loads(
                aws.client("s3").get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read()
            )
        )
    except ClientError as exc:
        if aws.error_code(exc) in aws.MISSING_OBJECT:
            return None
        raise


def _summary(manifest: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {
        "candidate_prefix": prefix,
        "primary_metric": manifest.get("primary_metric"),
        "primary_value": manifest.get("primary_value"),
        "parity_max_abs_diff": manifest.get("parity_max_abs_diff"),
        "family": manifest.get("family"),
    }


def _put(s3: Any, bucket: str, key: str, data: bytes, dataset: str, contract: Contract, stage: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=data, Tagging=tags(dataset, contract.classification, stage))


def _json(doc: Any) -> bytes:
    return json.dumps(doc, indent=2, default=_default, allow_nan=False).encode()


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _decompressed(body: bytes) -> bytes:
    import gzip

    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body


def _capacity() -> str:
    """spot, on-demand or local: from the Batch job queue the job runs in."""
    if os.environ.get("MLOPS_CAPACITY"):
        return os.environ["MLOPS_CAPACITY"]
    queue = os.environ.get("AWS_BATCH_JQ_NAME", "")
    return "spot" if queue.endswith("-spot") else "on-demand" if queue else "unknown"


def _code_version() -> str:
    from chalicelib.revision import code_revision

    return code_revision()


def _libraries() -> dict[str, str]:
    from importlib.metadata import version

    found = {"python": platform.python_version()}
    for name in ("scikit-learn", "skl2onnx", "onnxruntime", "onnx", "numpy"):
        try:
            found[name] = version(name)
        except Exception:
            found[name] = "not installed"
    return found


def _say(message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {message}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
