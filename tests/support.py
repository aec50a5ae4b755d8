"""Helpers shared by test modules of several layers (fixtures live in the conftest.py files).

* ``wait_until``: poll an asynchronous outcome (flow tests) instead of sleeping for it.
* ``PYTHON_REPR``: what no error message may show (``None``, ``{}``, ``[]``...).
* ``load_app``: app.py imported afresh with MLOPS_AUTH_READS set, as a deploy of that stage imports it.
* Candidates: ``contract_for``, ``built``, ``publish``, ``drain``, ``evaluate``: real models trained by
  the training job's own code, published as the job publishes them and delivered to evaluate_candidate.
* ``holdout_records``, ``post``: /predict requests built from a candidate's holdout.
* ``logistic_scorer``, ``batch_input``: the batch worker's scorer for a real logistic regression, and a
  breast-cancer batch input (header, body) for it.
* ``deliver_uploads``: the ingest queue drained into the ingest function, as the event runtime does.
* ``FakeMetadata``: an instance-metadata endpoint (IMDSv2) on 127.0.0.1 for the batch worker.
* ``resource_arns``, ``unscoped``: the ARNs a policy names, and whether one names an account and
  region (issue 15: policies scoped to the account and region they are deployed to).
* ``clean_env``, ``up_env``, ``MlopsUp``: `mlops up` as a person runs it, in a process of its own, on free ports and a
  state directory of the test's.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from chalicelib.validation import Contract
from mlops.datasets import breast_cancer_contract, breast_cancer_rows, drifted, to_csv

if TYPE_CHECKING:
    import pytest
    from chalice.test import Client

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# What an error message must never show: a Python repr of nothing (issue 14: "compared v1 with vNone").
PYTHON_REPR = re.compile(r"None(?![a-z])|\{\}|\[\]|\(\)|''|\"\"|<[\w.]+ object at")

# Only a guard against a hang: no assertion may depend on how fast the machine is, so the wait ends
# when the outcome is recorded, and the limit is far beyond what a busy two-core machine needs.
HANG_S = 180.0


def wait_until(predicate: Callable[[], Any], timeout_s: float = HANG_S, interval_s: float = 0.1) -> Any:
    """Poll until predicate() is truthy; return its last value (falsy after ``timeout_s``, a hang)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def load_app(monkeypatch: pytest.MonkeyPatch, reads: str) -> Any:
    """app.py and its blueprints imported afresh (as a deploy imports them) with MLOPS_AUTH_READS set;
    the modules imported before are put back afterwards."""
    import importlib
    import sys

    monkeypatch.setenv("MLOPS_AUTH_READS", reads)
    for name in [m for m in sys.modules if m == "app" or m.startswith("chalicelib.entrypoints")]:
        monkeypatch.delitem(sys.modules, name)
    return importlib.import_module("app").app


# --- candidates ----------------------------------------------------------------------------------------

DATASET = "breast_cancer"
# Holdout AUCs on the same rows (all trained on the same data, so the holdouts coincide):
# stump 0.865 < tiny forest 0.981 < logistic regression 0.985; C=0.001 regression 0.976.
MODELS = {
    "stump": ("random_forest", {"n_estimators": 1, "max_depth": 1}),
    "forest": ("random_forest", {"n_estimators": 3, "max_depth": 2}),
    "logistic": ("logistic_regression", {"C": 1.0}),
    "weak_logistic": ("logistic_regression", {"C": 0.001}),
}
POLICY = {"mode": "auto", "min_delta": 0.002, "guard_metrics": {"log_loss": 0.05}}


def contract_for(model: str = "stump", **promotion: Any) -> Contract:
    """The breast cancer contract training ``model`` (a key of MODELS) under POLICY + ``promotion``."""
    doc = breast_cancer_contract()
    family, params = MODELS[model]
    doc["training"]["model"] = {"family": family, "params": params}
    doc["promotion"] = {**POLICY, **promotion}
    return Contract.parse(doc)


@cache
def built(model: str) -> tuple[dict[str, bytes], dict[str, Any]]:
    """A candidate's artifacts, trained once per test session by the training job's code."""
    from chalicelib.training.settings import TrainingSettings
    from training.main import build_candidate
    from training.table import load_table

    header, rows = breast_cancer_rows()
    sources = [to_csv(header, rows[:330]), to_csv(header, drifted(header, rows[440:]))]
    contract = contract_for(model)
    training = TrainingSettings.from_contract(contract)
    lineage = {
        "run_id": "template",
        "dataset": DATASET,
        "data_hash": "0" * 64,
        "data_objects": [],
        "parameters": training.to_dict(),
    }
    return build_candidate(load_table(sources, contract), contract, training, lineage)


def build_from_uploads(
    doc: dict[str, Any], uploads: dict[str, bytes], contract: Contract | None = None
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """A candidate of contract ``doc`` trained by the training job's code on ``uploads`` (upload id ->
    CSV), with the lineage a run on a snapshot of those uploads records (objects, data hash)."""
    import hashlib

    from chalicelib.training.settings import TrainingSettings
    from chalicelib.training.snapshot import data_hash
    from training.main import build_candidate
    from training.table import load_table

    contract = contract or Contract.parse(doc)
    objects = [
        {
            "key": f"validated/{contract.dataset}/{upload}.csv",
            "version_id": "1",
            "sha256": hashlib.sha256(data).hexdigest(),
            "upload_id": upload,
            "size": len(data),
        }
        for upload, data in uploads.items()
    ]
    training = TrainingSettings.from_contract(contract)
    lineage = {
        "run_id": "template",
        "dataset": contract.dataset,
        "data_hash": data_hash(contract.dataset, objects),
        "data_objects": objects,
        "parameters": training.to_dict(),
    }
    return build_candidate(load_table(list(uploads.values()), contract), contract, training, lineage)


def publish(
    settings: Any,
    model: str,
    run_id: str | None = None,
    tamper: str | None = None,
    missing: str | None = None,
) -> str:
    """Publish a candidate as the training job does (manifest last); returns its run id. ``missing``:
    that artifact is listed in the manifest but never reaches the bucket."""
    import pytest

    from training import main as training_main
    from training.main import candidate_prefix, publish_candidate

    run_id = run_id or f"{DATASET}-{model}-{uuid.uuid4().hex[:8]}"
    artifacts, fields = built(model)
    artifacts = dict(artifacts)
    prefix = candidate_prefix(DATASET, run_id)
    put = training_main._put

    def put_but_missing(s3: Any, bucket: str, key: str, *rest: Any) -> None:
        if key != f"{prefix}{missing}":
            put(s3, bucket, key, *rest)

    with pytest.MonkeyPatch.context() as patch:
        if missing:
            patch.setattr(training_main, "_put", put_but_missing)
        publish_candidate(
            settings.models_bucket, prefix, artifacts, {**fields, "run_id": run_id}, contract_for(model)
        )
    if tamper:  # one bit of the object changes after the manifest recorded its checksum (same size)
        data = artifacts[tamper]
        boto3.client("s3").put_object(
            Bucket=settings.models_bucket, Key=prefix + tamper, Body=data[:-1] + bytes([data[-1] ^ 1])
        )
    return run_id


def drain(settings: Any, queue: str) -> list[str]:
    """Receive and delete every message of ``queue``; returns their bodies."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [m["Body"] for m in messages]
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def evaluate(client: Client, settings: Any, bodies: list[str] | None = None) -> dict[str, Any]:
    """Deliver the promotion queue's messages (or ``bodies``) to evaluate_candidate."""
    bodies = bodies if bodies is not None else drain(settings, settings.promotion_queue)
    bodies = [b for b in bodies if "manifest.json" in b]
    assert bodies, "no manifest notification reached the promotion queue"
    event = client.events.generate_sqs_event(queue_name=settings.promotion_queue, message_bodies=bodies)
    for record in event["Records"]:
        record["messageId"] = str(uuid.uuid4())
    return dict(client.lambda_.invoke("evaluate_candidate", event).payload)


# --- predictions ---------------------------------------------------------------------------------------


def logistic_scorer() -> Any:
    """The batch worker's ``Scorer`` for the logistic regression ``built`` trains and exports."""
    from scoring.engine import Scorer

    from chalicelib.serving.model import OnnxModel

    artifacts, _ = built("logistic")
    return Scorer(OnnxModel(artifacts["model.onnx"], json.loads(artifacts["input_schema.json"])))


def batch_input(rows: int) -> tuple[list[str], bytes]:
    """A breast-cancer batch input of ``rows`` rows: its header's names and its body."""
    from mlops.datasets import breast_cancer_batch

    data = breast_cancer_batch(rows, block_rows=rows)
    header, body = data.split(b"\n", 1)
    return header.decode().split(","), body


def holdout_records(model: str = "forest", n: int = 20) -> list[dict[str, Any]]:
    """Holdout rows of a candidate as JSON records (the features the model takes)."""
    artifacts, _ = built(model)
    schema = json.loads(artifacts["input_schema.json"])
    names = [f["name"] for f in schema["features"]]
    rows = list(csv.DictReader(io.StringIO(artifacts["holdout.csv"].decode())))[:n]
    return [{k: float(row[k]) for k in names} for row in rows]


def post(client: Client, path: str, body: Any, raw: bytes | None = None) -> Any:
    data = raw if raw is not None else json.dumps(body).encode()
    return client.http.post(path, body=data, headers={"Content-Type": "application/json"})


# --- uploads -------------------------------------------------------------------------------------------


def deliver_uploads(client: Client, settings: Any) -> None:
    """Drain the ingest queue into the function, as the event runtime would."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=settings.ingest_queue)["QueueUrl"]
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        event = client.events.generate_sqs_event(
            queue_name=settings.ingest_queue, message_bodies=[m["Body"] for m in messages]
        )
        for record in event["Records"]:
            record["messageId"] = str(uuid.uuid4())
        response = client.lambda_.invoke("ingest_upload", event)
        assert response.payload == {"batchItemFailures": []}
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


# --- batch workers -------------------------------------------------------------------------------------


class FakeMetadata:
    """IMDSv2 on 127.0.0.1: a token, then 404 until ``notice()``, then a termination notice.

    ``served`` is set once a watcher has read the notice, so a test knows the worker has it."""

    def __init__(self) -> None:
        self.notice_at: float | None = None
        self.served = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_PUT(self) -> None:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"fake-token")

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") != "fake-token":
                    self.send_response(401)
                    self.end_headers()
                    return
                if outer.notice_at is None or not self.path.endswith("/spot/instance-action"):
                    self.send_response(404)
                    self.end_headers()
                    return
                when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(outer.notice_at + 120))
                body = json.dumps({"action": "terminate", "time": when}).encode()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)
                outer.served.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def notice(self) -> None:
        self.notice_at = time.time()

    def close(self) -> None:
        self.server.shutdown()


# --- uploads of any shape (property tests of validation) ----------------------------------------------
#
# ``contracts()`` draws contract documents, ``uploads(doc)`` the bytes of a CSV upload for one: header
# variants, cells valid and not, quoting, delimiters, line endings, BOMs, encodings, gzip, sizes.
# ``check_report`` says what a well-formed validation report is; every upload must give one.

_COLUMN_NAMES = ["id", "site", "count", "temp_c", "flag", "kind", "note", "seen_at", "email", "Score.v2"]
_VALUE_CODES = frozenset(
    {
        "NULL_NOT_ALLOWED", "INVALID_INTEGER", "INVALID_FLOAT", "INVALID_BOOLEAN", "INVALID_TIMESTAMP",
        "NON_FINITE_NUMBER", "OUT_OF_RANGE", "UNKNOWN_CATEGORY", "NOT_ALLOWED_VALUE", "PATTERN_MISMATCH",
        "VALUE_TOO_LONG", "FORMULA_INJECTION", "DUPLICATE_ROW_ID", "DUPLICATE_VALUE",
    }
)  # fmt: skip
_HEADER_CODES = frozenset({"UNEXPECTED_COLUMN", "DUPLICATE_COLUMN"})  # column: a name from the file
_EDGY_CELLS = [
    "", " ", "NA", "null", "0", "-0", "007", "1_00", "\u0664\u0662", "\uff13", "1e400", "nan", "-inf", "3.0",
    "12345678901234567890", "9" * 400, "1,5", "true", "YES", "maybe", "=1+1", "@SUM(A1)", "+44 20",
    "-3.5", "2026-11-30T10:00:00Z", "2026-02-30", "0001-01-01T00:00:00+01:00", "caf\u00e9", "\u202e",
    "\ufeff", 'a"b', '"', "a,b", "a;b", "\t", "two\nlines", "\r", "x" * 300, "\U0001f600",
]  # fmt: skip


def _strategies() -> Any:
    from hypothesis import strategies as st

    return st


def contracts() -> Any:
    """Contract documents: 1-6 columns of any type, classification and constraint, a target, and
    random format, limits and drift sections. Every one parses (``Contract.parse``)."""
    st = _strategies()

    @st.composite
    def column(draw: Any, name: str) -> dict[str, Any]:
        kind = draw(st.sampled_from(["integer", "float", "boolean", "category", "string", "timestamp"]))
        doc: dict[str, Any] = {
            "name": name,
            "type": kind,
            "classification": draw(st.sampled_from(["public", "internal", "confidential", "pii"])),
            "nullable": draw(st.booleans()),
        }
        if kind in ("integer", "float") and draw(st.booleans()):
            low = draw(st.one_of(st.none(), st.integers(-(2**60), 2**60).map(float)))
            high = draw(st.one_of(st.none(), st.integers(-(2**60), 2**60).map(float)))
            if low is not None and high is not None and low > high:
                low, high = high, low
            doc.update(min=low, max=high)
        if kind == "category" or (kind in ("string", "integer") and draw(st.integers(0, 3)) == 0):
            pool = st.integers(-5, 5) if kind == "integer" else st.sampled_from(["a", "b", "North", "", "é"])
            doc["allowed"] = draw(st.lists(pool, min_size=1, max_size=4, unique=True))
        if kind in ("string", "category") and draw(st.integers(0, 3)) == 0:
            doc["pattern"] = draw(st.sampled_from([r"[a-z]+", r"\d{3}", r".*", r"[^@ ]+@[^@ ]+"]))
        if kind in ("string", "category") and draw(st.integers(0, 3)) == 0:
            doc["max_length"] = draw(st.integers(1, 20))
        doc["unique"] = draw(st.integers(0, 4)) == 0
        return doc

    @st.composite
    def contract(draw: Any) -> dict[str, Any]:
        names = draw(st.lists(st.sampled_from(_COLUMN_NAMES), min_size=1, max_size=6, unique=True))
        columns = [draw(column(name)) for name in names]
        task = draw(st.sampled_from(["classification", "regression"]))
        target = (
            {"name": "y", "type": "integer", "classification": "public", "allowed": [0, 1]}
            if task == "classification"
            else {"name": "y", "type": "float", "classification": "public"}
        )
        doc: dict[str, Any] = {
            "dataset": "things",
            "task": task,
            "target": "y",
            "columns": [*columns, target],
        }
        ids = [c["name"] for c in columns if not c["nullable"]]
        if ids and draw(st.booleans()):
            doc["row_id"] = draw(st.sampled_from(ids))
        delimiter = draw(st.sampled_from([",", ",", ",", ";", "\t", "|", ",", ",", " ", "x"]))
        quote = draw(st.sampled_from(['"', '"', "'", "|"]).filter(lambda q: q != delimiter))
        doc["format"] = {
            "delimiter": delimiter,
            "quotechar": quote,
            "allow_bom": draw(st.booleans()),
            "allow_multiline_fields": draw(st.booleans()),
            "null_values": draw(st.lists(st.sampled_from(["", "NA", "null", " "]), max_size=3, unique=True)),
            "max_field_bytes": draw(st.sampled_from([1024 * 1024] * 6 + [64, 2**70])),
            "max_bytes": draw(st.sampled_from([5 * 1024**3] * 7 + [600])),
        }
        min_rows = draw(st.integers(1, 4))
        doc["limits"] = {
            "min_rows": min_rows,
            "max_rows": draw(st.one_of(st.none(), st.integers(min_rows, 30))),
            "max_null_fraction": draw(st.sampled_from([1.0, 0.5, 0.0])),
            "max_duplicate_row_fraction": draw(st.sampled_from([1.0, 0.1, 0.0])),
        }
        return doc

    return contract()


def _valid_cell(st: Any, column: dict[str, Any], nulls: list[str]) -> Any:
    """Cells the contract accepts in ``column`` (a null only where it is nullable)."""
    kind = column["type"]
    if column.get("allowed"):
        values = [str(v) for v in column["allowed"] if str(v) not in nulls or column.get("nullable", False)]
        if values:
            return st.sampled_from(values)
    if column.get("nullable", False) and nulls:
        return st.one_of(st.sampled_from(nulls), _valid_cell(st, {**column, "nullable": False}, nulls))
    if kind == "integer":
        low = math.ceil(column["min"]) if column.get("min") is not None else -(10**20)
        high = math.floor(column["max"]) if column.get("max") is not None else 10**20
        return st.integers(low, high).map(str)
    if kind == "float":
        return st.floats(column.get("min"), column.get("max"), allow_nan=False, allow_infinity=False).map(
            repr
        )
    if kind == "boolean":
        return st.sampled_from(["true", "false", "1", "0", " Yes", "n"])
    if kind == "timestamp":
        return st.datetimes().map(lambda d: d.isoformat())
    text = (
        st.from_regex(column["pattern"], fullmatch=True)
        if column.get("pattern")
        else st.text(st.characters(codec="utf-8", exclude_characters="\x00\r\n=@+-\t"), min_size=1)
    )
    return text.filter(lambda v: v not in nulls and len(v) <= column.get("max_length", 12))


def uploads(doc: dict[str, Any]) -> Any:
    """Bytes of an upload for contract ``doc``: a clean one about a quarter of the time, otherwise
    with a few kinds of damage each (any of them may also be drawn alone)."""
    st = _strategies()
    fmt = doc["format"]
    nulls = list(fmt["null_values"])
    names = [c["name"] for c in doc["columns"]]
    by_name = {c["name"]: c for c in doc["columns"]}

    @st.composite
    def upload(draw: Any) -> bytes:
        clean = draw(st.integers(0, 3)) == 0

        def damaged(one_in: int) -> bool:
            # The largest value: hypothesis draws small ones (its simplest) more often than 1 in n.
            return not clean and draw(st.integers(1, one_in)) == one_in

        header = draw(st.permutations(names))
        if damaged(12) and len(header) > 1:
            header = header[:-1]  # a missing column
        if damaged(12):
            header = [*header, draw(st.sampled_from(["extra", header[0], ""]))]  # unexpected or repeated
        if damaged(12):
            header = [h.upper() for h in header]
        pads = [pad for pad in ("", "", " ", "\t", "\u00a0") if pad != fmt["delimiter"]]
        header_cells = [draw(st.sampled_from(pads)) + h + draw(st.sampled_from(pads)) for h in header]
        n_rows = draw(st.sampled_from([5, 1, 2, 3, 8, 13, 40, 120, 0]))
        edgy = 0 if clean else draw(st.sampled_from([0, 2, 10, 40]))  # percent of edgy cells
        rows = []
        for _ in range(n_rows):
            row = []
            for name in header:
                column = by_name.get(name.strip())
                if column is not None and draw(st.integers(1, 100)) > edgy:
                    row.append(draw(_valid_cell(st, column, nulls)))
                else:
                    row.append(draw(st.sampled_from(_EDGY_CELLS)))
            if damaged(20):
                row = row[:-1] if row and draw(st.booleans()) else [*row, "surplus"]
            rows.append(row)
        if rows and damaged(6):
            rows.extend(draw(st.lists(st.sampled_from(rows), max_size=5)))  # repeated rows
        quoting = draw(
            st.sampled_from(
                [csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONE]
                if not clean
                else [csv.QUOTE_MINIMAL, csv.QUOTE_ALL]
            )
        )
        out = io.StringIO()
        writer = csv.writer(
            out,
            delimiter=draw(st.sampled_from([",", ";"])) if damaged(10) else fmt["delimiter"],
            quotechar=fmt["quotechar"] if quoting != csv.QUOTE_NONE else '"',
            quoting=quoting,
            escapechar="\\" if quoting == csv.QUOTE_NONE else None,
            lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])),
        )
        for row in [header_cells, *rows]:
            try:
                writer.writerow(row)
            except csv.Error:  # what QUOTE_NONE cannot write: written raw, as a careless exporter would
                out.write(writer.dialect.delimiter.join(row) + writer.dialect.lineterminator)
            if damaged(30):
                out.write("\n")  # a blank line
        text = out.getvalue()
        if text and damaged(10):  # a stray quote somewhere
            at = draw(st.integers(0, len(text) - 1))
            text = text[:at] + fmt["quotechar"] + text[at:]
        if damaged(10) or (fmt["allow_bom"] and draw(st.booleans())):
            text = "\ufeff" + text
        encoding = (
            draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32-be", "latin-1", "cp1252"]))
            if damaged(8)
            else "utf-8"
        )
        data = text.encode(encoding, errors="replace")
        if data and damaged(20):  # a bad byte somewhere
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + b"\xff" + data[at:]
        if draw(st.integers(0, 5)) == 5:
            data = gzip.compress(data)
            if damaged(4):
                data = data[: draw(st.integers(0, len(data)))]  # truncated
        return data

    return upload()


def any_bytes() -> Any:
    """Arbitrary bytes, some starting like gzip, zip or a byte-order mark."""
    st = _strategies()
    prefixes = st.sampled_from(
        [b"", b"", b"\x1f\x8b", b"\x1f\x8b\x08\x00", b"PK\x03\x04", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff",
         b"\x00\x00\xfe\xff", b"BZh", b"id,y\n"]
    )  # fmt: skip
    return st.tuples(prefixes, st.binary(max_size=600)).map(lambda parts: parts[0] + parts[1])


def check_report(report: dict[str, Any], contract: Contract, profile: Any = "unknown") -> None:
    """Assert that ``report`` is a well-formed validation report for ``contract``:

    * plain JSON (no NaN or infinity), with exactly the documented top-level fields (and ``drift``
      only when statistics were kept);
    * ``status`` is ``valid`` exactly when there are no issues; ``rows``, ``columns`` and
      ``duplicate_rows`` are counts (``duplicate_rows`` <= ``rows``), ``compression`` null or gzip;
    * every issue has a documented code with its documented fix, a message, a count >= 1, a column
      that is a contract column (value and missing-column codes), a header name (unexpected or
      repeated column) or null (file-level codes), and a row within the rows read (the header is
      row 0; a fatal issue may name the row it stopped at, one past them) with its line at or after it;
    * issues are sorted by count and unique per (code, column); values of confidential and pii
      columns never appear as examples;
    * a fatal issue leaves no statistics and no profile; otherwise every contract column has its
      statistics (count <= rows, no min, max or top values for sensitive columns), and a valid
      report comes with a profile of as many rows.
    """
    from chalicelib.validation.issues import CODES, FATAL

    assert json.loads(json.dumps(report, allow_nan=False)) == report
    fields = {"status", "dataset", "contract_version", "rows", "columns", "compression", "duplicate_rows",
              "issues", "column_statistics", "seconds"}  # fmt: skip
    assert fields <= set(report) <= fields | {"drift"}, sorted(report)
    assert report["status"] in ("valid", "invalid")
    assert (report["status"] == "valid") == (report["issues"] == [])
    assert (report["dataset"], report["contract_version"]) == (contract.dataset, contract.version)
    rows = report["rows"]
    for name in ("rows", "columns", "duplicate_rows"):
        assert isinstance(report[name], int) and report[name] >= 0, (name, report[name])
    assert report["duplicate_rows"] <= rows and report["compression"] in (None, "gzip")
    columns = {c.name: c for c in contract.columns}
    fatal = any(issue["code"] in FATAL for issue in report["issues"])
    seen = set()
    for issue in report["issues"]:
        code = issue["code"]
        assert set(issue) - {"example"} == {"code", "column", "count", "row", "line", "message", "fix"}
        assert code in CODES and issue["fix"] == CODES[code][1] and issue["message"], issue
        assert (code, issue["column"]) not in seen
        seen.add((code, issue["column"]))
        assert isinstance(issue["count"], int) and issue["count"] >= 1, issue
        if code in _VALUE_CODES or code == "MISSING_COLUMN":
            assert issue["column"] in columns, issue
        elif code in _HEADER_CODES:
            assert isinstance(issue["column"], str), issue
        else:
            assert issue["column"] is None, issue
        if code in _VALUE_CODES or code in ("RAGGED_ROW", "DUPLICATE_ROWS_EXCEEDED"):
            assert issue["count"] <= rows, issue
        row, line = issue["row"], issue["line"]
        if row is not None:
            assert isinstance(row, int) and 0 <= row <= rows + (1 if code in FATAL else 0), (issue, rows)
            if code in _VALUE_CODES or code in ("RAGGED_ROW", "EMBEDDED_NEWLINE"):
                assert row >= 1, issue
        if line is not None:
            assert isinstance(line, int) and line >= 1 and (row is None or line >= row + 1), issue
        if "example" in issue:
            assert isinstance(issue["example"], str)
            column = columns.get(issue["column"] or "")
            if column is not None and column.sensitive:
                assert issue["example"] == "***", issue
    counts = [issue["count"] for issue in report["issues"]]
    assert counts == sorted(counts, reverse=True)
    if fatal:
        assert report["column_statistics"] == {} and "drift" not in report
        assert profile in (None, "unknown")
    else:
        assert set(report["column_statistics"]) == set(columns)
        for name, stats in report["column_statistics"].items():
            assert stats["type"] == columns[name].type and 0 <= stats["nulls"] <= stats["count"] <= rows
            if columns[name].sensitive:
                assert not {"min", "max", "top"} & set(stats), (name, stats)
    if report["status"] == "valid" and profile != "unknown":
        assert profile is not None and profile["rows"] == rows


# --- a tiny dataset for ingest tests ---------------------------------------------------------------------

IRIS: dict[str, Any] = {  # a two-column contract and a valid upload of it
    "dataset": "iris",
    "columns": [
        {"name": "a", "type": "float", "classification": "public", "min": 0},
        {"name": "label", "type": "category", "classification": "internal", "allowed": ["yes", "no"]},
    ],
    "target": "label",
    "task": "classification",
}
GOOD = b"a,label\n1.5,yes\n2.5,no\n"


# --- request bodies --------------------------------------------------------------------------------------

# Number literals no field holds: beyond Python's int() (4,300 digits), beyond a double, and tiny.
HUGE_NUMBERS = ["1" + "0" * 5000, "-" + "9" * 4400, "1" + "0" * 400, "1e400", "-1e400", "1e-400", "9" * 40]
_RAW = "\u0000raw:"


def raw_number(literal: str) -> str:
    """A placeholder for a JSON number literal that ``json_text`` writes as it is (json.dumps cannot
    write an integer of more than 4,300 digits, nor 1e400)."""
    return _RAW + literal


def json_text(doc: Any) -> bytes:
    """``doc`` as JSON, with the ``raw_number`` placeholders written as their literals."""
    import re

    text = json.dumps(doc)
    return re.sub(r'"\\u0000raw:([-+.eE0-9]+)"', r"\1", text).encode()


def json_routes(app: Any) -> list[tuple[str, str, Any]]:
    """(method, path, declared body) of every route of ``app`` that takes a JSON body."""
    return sorted(
        (
            (method, path, getattr(entry.view_function, "request_body", None))
            for path, methods in app.routes.items()
            for method, entry in methods.items()
            if method in ("POST", "PUT", "PATCH") and "application/json" in entry.content_types
        ),
        key=lambda route: (route[1], route[0]),
    )


def json_values(huge: bool = True) -> Any:
    """Any JSON document; with ``huge``, numbers beyond every range too (``raw_number`` placeholders)."""
    st = _strategies()
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        *([st.sampled_from(HUGE_NUMBERS).map(raw_number)] if huge else []),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=12,
    )


def body_documents(body: Any) -> Any:
    """Documents a declared ``chalicelib.http.Body`` accepts: every required field, some optional
    ones, each value within its declared type and range (read from msgspec's type information)."""
    from msgspec import inspect

    st = _strategies()
    info = inspect.type_info(body)
    assert isinstance(info, inspect.StructType), body
    required = {f.name: _values_of(f.type) for f in info.fields if f.required}
    optional = {f.name: _values_of(f.type) for f in info.fields if not f.required}
    return st.fixed_dictionaries(required, optional=optional)


def _values_of(kind: Any) -> Any:
    from msgspec import inspect

    st = _strategies()
    if isinstance(kind, inspect.Metadata):
        return _values_of(kind.type)
    if isinstance(kind, inspect.UnionType):
        return st.one_of([_values_of(t) for t in kind.types])
    if isinstance(kind, inspect.NoneType):
        return st.none()
    if isinstance(kind, inspect.BoolType):
        return st.booleans()
    if isinstance(kind, inspect.IntType):
        low = kind.ge if kind.ge is not None else None if kind.gt is None else kind.gt + 1
        high = kind.le if kind.le is not None else None if kind.lt is None else kind.lt - 1
        return st.integers(low, high)
    if isinstance(kind, inspect.FloatType):
        return st.floats(
            kind.ge if kind.ge is not None else kind.gt,
            kind.le if kind.le is not None else kind.lt,
            exclude_min=kind.gt is not None,
            exclude_max=kind.lt is not None,
            allow_nan=False,
            allow_infinity=False,
        )
    if isinstance(kind, inspect.StrType):
        text = st.from_regex(kind.pattern) if kind.pattern else st.text()
        low, high = kind.min_length or 0, kind.max_length
        return text.filter(lambda s: low <= len(s) and (high is None or len(s) <= high))
    if isinstance(kind, inspect.LiteralType):
        return st.sampled_from(kind.values)
    if isinstance(kind, inspect.ListType):
        high = min(kind.max_length if kind.max_length is not None else 4, 4)
        return st.lists(_values_of(kind.item_type), min_size=kind.min_length or 0, max_size=high)
    if isinstance(kind, inspect.AnyType):
        return json_values(huge=False)
    raise AssertionError(f"no strategy for {kind!r}: teach tests/support.py::_values_of")


def number_fields(body: Any) -> list[str]:
    """The fields of a declared body that take a number (alone or in a union)."""
    from msgspec import inspect

    def numeric(kind: Any) -> bool:
        if isinstance(kind, inspect.Metadata):
            return numeric(kind.type)
        if isinstance(kind, inspect.UnionType):
            return any(numeric(t) for t in kind.types)
        return isinstance(kind, inspect.IntType | inspect.FloatType)

    info = inspect.type_info(body)
    assert isinstance(info, inspect.StructType)
    return [f.name for f in info.fields if numeric(f.type)]


# --- policies scoped to an account and a region ------------------------------------------------------

# S3 bucket and object ARNs have neither account nor region (bucket names are global); IAM's have
# no region. Every other service the policies name has both.
NO_REGION = frozenset({"s3", "iam"})
NO_ACCOUNT = frozenset({"s3"})


def _no_pseudo_colons(text: str) -> str:
    return text.replace("${AWS::", "${AWS.")


def resource_arns(document: dict[str, Any]) -> list[str]:
    """Every ARN the statements of a policy document name (the text of an ``Fn::Sub`` too)."""
    statements = document.get("Statement", [])
    arns = []
    for statement in statements if isinstance(statements, list) else [statements]:
        resources = statement.get("Resource", [])
        for resource in resources if isinstance(resources, list) else [resources]:
            arn = resource.get("Fn::Sub") if isinstance(resource, dict) else resource
            if isinstance(arn, str) and arn.startswith("arn:"):
                arns.append(arn)
    return arns


def unscoped(arn: str, account: str, region: str) -> str | None:
    """Why ``arn`` does not name ``account`` and ``region`` where its service has them (None: it does).
    CloudFormation's pseudo parameters (``${AWS::Region}``...) count as one part (their colons too)."""
    arn, account, region = (_no_pseudo_colons(t) for t in (arn, account, region))
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return f"{arn}: not an ARN"
    service, arn_region, arn_account = parts[2], parts[3], parts[4]
    want = ("" if service in NO_REGION else region, "" if service in NO_ACCOUNT else account)
    if (arn_region, arn_account) != want:
        return f"{arn}: region {arn_region!r}, account {arn_account!r}"
    return None


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a shell that has never run `mlops env`: none of the test process's AWS_,
    MLOPS_ or POWERTOOLS_ variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_", "POWERTOOLS_"))}
    env.update(extra)
    return env


def up_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """``clean_env`` for `mlops up`: free ports and the test's own state directory (never the
    project's saved state)."""
    from mlops.localcloud import free_port

    return clean_env(
        MLOPS_LOCAL_PORT=str(free_port()),
        MLOPS_API_PORT=str(free_port()),
        MLOPS_LOCAL_STATE=str(state_dir),
        PYTHONUNBUFFERED="1",
        **extra,
    )


class MlopsUp:
    """One `mlops up` process; its output is read as it comes (the pipe never fills)."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.env = env
        self.port, self.api_port = int(env["MLOPS_LOCAL_PORT"]), int(env["MLOPS_API_PORT"])
        self.process = subprocess.Popen(
            [str(BIN / "mlops"), "up", *args],
            cwd=PROJECT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_banner(self) -> str:
        """Wait for the banner that ends start-up (or for the process to end); return the output."""
        wait_until(lambda: "Ctrl-C stops" in self.output or self.process.poll() is not None)
        assert "is up" in self.output, f"mlops up did not start:\n{self.output}"
        return self.output

    def wait_ready(self) -> None:
        """The banner, then the API answering /health."""
        self.wait_banner()
        assert wait_until(lambda: self._health() == 200), f"the API never answered:\n{self.output}"

    def _health(self) -> int | None:
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/health", timeout=10) as answer:
                return int(answer.status)
        except OSError:
            return None

    def ctrl_c(self, bound_s: float = 60.0) -> tuple[int | None, float]:
        """SIGINT; then (exit code, seconds it took), or (None, ``bound_s``) if still running then."""
        sent = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=bound_s)
        except subprocess.TimeoutExpired:
            return None, bound_s
        took = time.monotonic() - sent
        self._reader.join(timeout=HANG_S)
        return code, took

    def stop(self) -> None:
        """Ctrl-C, which must end it cleanly (exit code 0)."""
        code, _ = self.ctrl_c()
        if code is None:
            self.kill()
        assert code == 0, self.output

    def kill(self) -> None:
        """SIGKILL: nothing of the process runs after this."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=HANG_S)
        self._reader.join(timeout=HANG_S)
