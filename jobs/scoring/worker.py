"""A batch scoring worker: ``python -m scoring.worker --job-id J``.

Runs as one child of an AWS Batch array job on spot capacity (locally: a child process). It loads
the job's pinned model version once, then takes shards from the batch work queue until the job is
over, and for each:

1. keeps the message invisible to others while it works (a heartbeat extends the visibility every
   third of ``BATCH_VISIBILITY_S``), so a lost worker's shard comes back within that time;
2. reads its byte range, parses, scores and formats (``scoring.engine``, stages overlapped);
3. writes the part create-only (``IfNoneMatch="*"``): a 412 means another worker wrote it first,
   and its part (same input, same model: the same bytes) is acknowledged; then the shard's capture
   object (its rows as inference records of role ``batch``, masked as the job's capture choice says,
   ``chalicelib.capture``), create-only too, under a key fixed by the job and shard (``ShardCapture``);
4. marks the shard done and counts it, in one conditional transaction (counted once);
5. finishes the job if that was the last shard (manifest, status, notification);
6. deletes the message.

A crash between any two steps repeats only idempotent steps. Spot: a thread polls the instance
metadata (IMDSv2 ``spot/instance-action``, every ``MLOPS_SPOT_POLL_S`` = 5 s, the endpoint in
``MLOPS_IMDS_ENDPOINT``); on a notice the worker takes no more shards, finishes the one in hand if
its estimate says it can before the termination time (with a margin), else releases it
(visibility 0) at once, and exits 0. A shard whose rows cannot be scored fails at once, named
(``BadShard``); any other error releases it for another attempt, and after ``maxReceiveCount``
attempts SQS moves it to the DLQ, where ``batch_shard_failed`` marks it failed: the job then ends
``PARTIAL`` naming it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import bootstrap
from chalicelib.adapters import aws
from chalicelib.adapters.aws.artifacts import S3Artifacts
from chalicelib.adapters.aws.registry import DynamoRegistry
from chalicelib.batch.exceptions import BadShard
from chalicelib.batch.finishing import finish_if_complete
from chalicelib.batch.jobs import FINAL, HEARTBEAT_S
from chalicelib.batch.ports import BatchPorts
from chalicelib.batch.sharding import Shard, part_key
from chalicelib.capture.ports import BatchCaptureStore
from chalicelib.capture.records import Masking, masking_of_choice, timestamp
from chalicelib.capture.service import Answer, encode_answer
from chalicelib.serving.model import Scores, fetch_artifact, load_version
from chalicelib.serving.ports import ArtifactReader, RegistryReader
from chalicelib.settings import Settings
from chalicelib.timeutil import parse_iso, utc_now

from .engine import CHUNK_BYTES, Scorer, ShardOutput, gzip_pieces, row_pieces, s3_range_chunks, score_pieces

DEFAULT_VISIBILITY_S = 60
DEFAULT_IMDS = "http://169.254.169.254"
FINISH_MARGIN_S = 10.0  # finish the shard in hand after a notice only with this much time to spare


def process_started_at() -> float:
    """When this process started (epoch seconds), so an attempt's interpreter start and imports
    count as its worker-seconds: from ``/proc`` on Linux (10 ms ticks), else now."""
    try:
        with open("/proc/self/stat") as f:
            # Field 22, counted after the command name (which may hold spaces, inside parentheses).
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()


def _say(message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S.%f}"[:-3] + f" [{os.getpid()}] {message}", flush=True)


# --- spot notices ------------------------------------------------------------------------------------


class SpotWatcher:
    """Polls ``<endpoint>/latest/meta-data/spot/instance-action`` with an IMDSv2 token.

    404 means no notice. A notice is ``{"action": "terminate"|"stop", "time": "...Z"}``; the
    instance goes away at ``time`` (two minutes after the notice). An empty endpoint disables it.
    """

    def __init__(self, endpoint: str | None = None, interval_s: float | None = None) -> None:
        self.endpoint = (
            os.environ.get("MLOPS_IMDS_ENDPOINT", DEFAULT_IMDS) if endpoint is None else endpoint
        ).rstrip("/")
        self.interval_s = float(os.environ.get("MLOPS_SPOT_POLL_S", 5) if interval_s is None else interval_s)
        self.notice: dict[str, Any] | None = None
        self.noticed = threading.Event()
        self._stop = threading.Event()
        self._token: str | None = None
        self._token_at = 0.0

    def _get_token(self) -> str:
        if self._token is None or time.monotonic() - self._token_at > 3000:
            request = urllib.request.Request(
                f"{self.endpoint}/latest/api/token",
                method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"},
            )
            with urllib.request.urlopen(request, timeout=2) as response:
                self._token = response.read().decode()
            self._token_at = time.monotonic()
        return self._token

    def check(self) -> dict[str, Any] | None:
        """One poll; the notice if there is one (and remember it)."""
        if not self.endpoint:
            return None
        try:
            request = urllib.request.Request(
                f"{self.endpoint}/latest/meta-data/spot/instance-action",
                headers={"X-aws-ec2-metadata-token": self._get_token()},
            )
            with urllib.request.urlopen(request, timeout=2) as response:
                notice = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                self._token = None  # expired token: a new one next time
            return None
        except (OSError, ValueError):
            return None  # no metadata service (or a hiccup): no notice
        self.notice = notice if isinstance(notice, dict) else {"action": "terminate"}
        self.noticed.set()
        return self.notice

    def seconds_left(self) -> float:
        """Seconds until the announced termination (120 if the notice gives no time)."""
        when = (self.notice or {}).get("time")
        if not when:
            return 120.0
        try:
            deadline = parse_iso(str(when))
        except ValueError:
            return 120.0
        return 120.0 if deadline is None else (deadline - datetime.now(UTC)).total_seconds()

    def start(self) -> SpotWatcher:
        if self.endpoint:
            threading.Thread(target=self._run, name="spot-watcher", daemon=True).start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set() and not self.noticed.is_set():
            self.check()
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()


class Released(Exception):
    """The shard in hand was given back (spot notice, no time to finish it)."""


class VisibilityExtender:
    """Keeps one message invisible while its shard is worked on (every third of the timeout)."""

    def __init__(self, sqs: Any, url: str, receipt: str, visibility_s: int) -> None:
        self.sqs, self.url, self.receipt, self.visibility_s = sqs, url, receipt, visibility_s
        self.extensions = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="visibility", daemon=True)

    def __enter__(self) -> VisibilityExtender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(max(self.visibility_s / 3.0, 0.2)):
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=self.receipt, VisibilityTimeout=self.visibility_s
                )
                self.extensions += 1
            except ClientError:
                return  # the message was deleted or its receipt expired: nothing more to keep


# --- writing -----------------------------------------------------------------------------------------


def write_part(bucket: str, key: str, output: ShardOutput, job_id: str) -> dict[str, Any]:
    """The part, create-only. If another worker wrote it first, its part is acknowledged as it is."""
    written = aws.put_if_absent(
        bucket, key, output.data, ContentType="text/csv",
        Metadata={"rows": str(output.rows), "sha256": output.sha256, "job-id": job_id},
    )  # fmt: skip
    if written:
        return {
            "key": key,
            "rows": output.rows,
            "bytes": len(output.data),
            "sha256": output.sha256,
            "written": True,
        }
    head = aws.client("s3").head_object(Bucket=bucket, Key=key)
    meta = head.get("Metadata", {})
    return {
        "key": key,
        "rows": int(meta["rows"]),
        "bytes": int(head["ContentLength"]),
        "sha256": meta["sha256"],
        "written": False,
    }


# --- capture -----------------------------------------------------------------------------------------


class ShardCapture:
    """A shard's rows as inference records (role ``batch``; request id ``<job>-<shard>``, index the row
    number in the shard, ``row_id`` from the contract's row id column), masked as the job's capture
    choice says, collected while the shard is scored and stored once, create-only."""

    def __init__(self, job: dict[str, Any], shard: int, scorer: Scorer, masking: Masking) -> None:
        self.job = job
        self.shard = shard
        self.masking = masking
        self.classes = [str(c) for c in scorer.schema.classes] if scorer.schema.classification else None
        choice = job.get("capture") or {}
        self.row_id = choice.get("row_id")
        wanted = set(masking.kept | masking.hashed)
        if self.row_id:
            wanted.add(str(self.row_id))
        self.columns = sorted(wanted)
        self.lines: list[bytes] = []

    @classmethod
    def for_job(cls, job: dict[str, Any], shard: int, scorer: Scorer) -> ShardCapture | None:
        masking = masking_of_choice(job.get("capture"), lambda: bootstrap.capture_key().key())
        return None if masking is None else cls(job, shard, scorer, masking)

    def observe(self, table: Any, scores: Scores, first_row: int, seconds: float) -> None:
        present = [c for c in self.columns if c in table.column_names]
        rows = table.select(present).to_pylist() if present else [{}] * table.num_rows
        if self.classes is not None:
            assert scores.labels is not None and scores.probabilities is not None
            labels = [v.item() if hasattr(v, "item") else v for v in scores.labels.tolist()]
            outputs = [
                {"prediction": label, "probabilities": dict(zip(self.classes, row, strict=True))}
                for label, row in zip(labels, scores.probabilities.tolist(), strict=True)
            ]
        else:
            assert scores.predictions is not None
            outputs = [{"prediction": float(v)} for v in scores.predictions.tolist()]
        row_ids = (
            [None if r.get(self.row_id) is None else str(r[self.row_id]) for r in rows]
            if self.row_id
            else None
        )
        answer = Answer(
            model=str(self.job["model"]),
            version=int(self.job["version"]),
            role="batch",
            request_id=f"{self.job['job_id']}-{self.shard:05d}",
            records=rows,
            latency_ms=round(seconds * 1000.0, 3),
            outputs=outputs,
            row_ids=row_ids,
            job_id=str(self.job["job_id"]),
            first_index=first_row,
        )
        self.lines += encode_answer(answer, self.masking, timestamp(utc_now()))

    def store(self, store: BatchCaptureStore) -> str:
        """The shard's object (a retried shard finds its key taken: nothing new is written)."""
        job_time = parse_iso(str(self.job["created_at"]))
        assert job_time is not None, "a job record always has its creation time"
        return store.put_shard(
            str(self.job["model"]), str(self.job["job_id"]), self.shard, job_time, self.lines
        )


# --- the worker --------------------------------------------------------------------------------------


class Worker:
    def __init__(
        self,
        job_id: str,
        settings: Settings,
        watcher: SpotWatcher | None = None,
        ports: BatchPorts | None = None,
    ) -> None:
        self.job_id = job_id
        self.settings = settings
        self.ports = ports or bootstrap.batch_ports()
        self.jobs = self.ports.jobs
        self.index = int(os.environ.get("AWS_BATCH_JOB_ARRAY_INDEX", 0))
        self.attempt = int(os.environ.get("AWS_BATCH_JOB_ATTEMPT", 1))
        self.worker_id = f"{self.index}-a{self.attempt}-{os.getpid()}"
        self.visibility_s = int(os.environ.get("BATCH_VISIBILITY_S", DEFAULT_VISIBILITY_S))
        self.max_idle_s = float(os.environ.get("BATCH_MAX_IDLE_S", 600))
        self.chunk_bytes = int(os.environ.get("BATCH_CHUNK_BYTES", CHUNK_BYTES))
        # Tests stop a worker at a chosen point (see ``_hold``); unset in production.
        self.hold_file = os.environ.get("MLOPS_BATCH_HOLD_FILE") or None
        self.watcher = watcher or SpotWatcher()
        self.sqs = aws.client("sqs")
        self.url = self.sqs.get_queue_url(QueueName=settings.batch_work_queue)["QueueUrl"]
        self.scorers: dict[tuple[str, int, str], Scorer] = {}
        self.shard_seconds: list[float] = []
        self.state = "starting"
        self.started = process_started_at()  # this attempt's worker-seconds count from here
        self._beats = threading.Event()
        self._beat_lock = threading.Lock()
        self._closed = False

    # model loading: once per (model, version, engine)
    def scorer(self, job: dict[str, Any]) -> Scorer:
        key = (str(job["model"]), int(job["version"]), str(job.get("engine", "onnxruntime")))
        if key not in self.scorers:
            registry = DynamoRegistry(self.settings.registry_table, self.settings.audit_table)
            artifacts = S3Artifacts()
            model = load_version(registry, artifacts, key[0], key[1])
            pipeline = _load_pipeline(registry, artifacts, key[0], key[1]) if key[2] == "sklearn" else None
            # The job's pii choice, made and recorded when it was submitted (one job per worker).
            drop, include = job.get("pii_dropped") or [], job.get("include_pii") or []
            self.scorers[key] = Scorer(model, key[2], pipeline, drop=drop, include=include)
            _say(f"loaded {key[0]} v{key[1]} ({key[2]})")
        return self.scorers[key]

    def _heartbeat_loop(self) -> None:
        # At a fixed rate (not a fixed pause after each write), so no two records are more than
        # HEARTBEAT_S apart and a silent attempt's charge (costs.SILENCE_S) covers its last seconds.
        due = time.monotonic() + HEARTBEAT_S
        while not self._beats.wait(max(0.0, due - time.monotonic())):
            self.beat()
            due = max(due + HEARTBEAT_S, time.monotonic())

    def beat(self, last: bool = False) -> None:
        """Rewrite this attempt's record (state, start, now): what its cost is computed from. A
        failed write loses nothing: the next record carries the attempt's whole span again. Writes
        are one at a time, and none follows the ``last`` one (a heartbeat in flight cannot overwrite
        the record that closes the attempt)."""
        with self._beat_lock:
            if self._closed:
                return
            self._closed = last
            try:
                self.jobs.heartbeat(self.job_id, self.worker_id, self.state, self.started)
            except (ClientError, BotoCoreError) as exc:
                _say(f"heartbeat failed: {exc}")

    def run(self) -> int:
        """The attempt, from its first record to its last: every path out of it (nothing to do, a
        notice, idle, an error) ends with the record that closes its worker-seconds."""
        self.beat()
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()
        try:
            return self._run()
        finally:
            self.state = "exited"
            self._beats.set()
            self.beat(last=True)
            self.watcher.stop()

    def _run(self) -> int:
        job = self._wait_for_job()
        if job is None:
            return 1
        if job["status"] in FINAL:
            _say(f"job {self.job_id} is {job['status']}: nothing to do")
            return 0
        self.jobs.add(self.job_id, worker_starts=1, interruptions=1 if self.attempt > 1 else 0)
        self.scorer(job)
        self.watcher.start()
        idle_since = time.monotonic()
        while True:
            if self.watcher.noticed.is_set():
                return self._interrupted(None)
            self.state = "waiting"
            self._hold("take")
            messages = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=1, WaitTimeSeconds=1, VisibilityTimeout=self.visibility_s,
                AttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])  # fmt: skip
            if not messages:
                job = self.jobs.get(self.job_id) or {}
                if job.get("status") in FINAL:
                    _say(f"job {self.job_id} is {job['status']}: exiting")
                    return 0
                finish_if_complete(self.ports, self.job_id)
                if time.monotonic() - idle_since > self.max_idle_s:
                    _say("idle for too long: exiting")
                    return 0
                continue
            self.state = "scoring"
            try:
                self.handle(messages[0])
            except Released:
                return self._interrupted(messages[0])
            idle_since = time.monotonic()

    def _wait_for_job(self) -> dict[str, Any] | None:
        for _ in range(60):
            job = self.jobs.get(self.job_id)
            if job is not None and job.get("status") not in ("SUBMITTED", "PLANNING"):
                return job
            time.sleep(0.5)
        _say(f"job {self.job_id} is not planned")
        return None

    def _interrupted(self, message: dict[str, Any] | None) -> int:
        self.state = "released"
        self.jobs.add(self.job_id, interruptions=1)
        _say(
            f"spot notice {self.watcher.notice}: {'released the shard in hand, ' if message else ''}exiting cleanly"
        )
        return 0

    def _hold(self, step: str, shard: int | None = None) -> None:
        """Wait here while the file ``MLOPS_BATCH_HOLD_FILE`` names this step, saying so once.

        So a test can interrupt a worker at a known point of a shard (``score``, ``write``, ``count``,
        ``finish``) or before it takes one (``take``), whatever the machine's speed: the shard in hand
        stays invisible to others meanwhile, its visibility still extended."""
        if self.hold_file is None:
            return
        said = False
        while _hold_step(self.hold_file) == step:
            if not said:
                _say(f"{'' if shard is None else f'shard {shard}: '}held before {step}")
                said = True
            time.sleep(0.05)

    def handle(self, message: dict[str, Any]) -> None:
        body = json.loads(message["Body"])
        shard = Shard.from_dict(body["shard"])
        job_id = body["job_id"]
        job = self.jobs.get(job_id) if job_id != self.job_id else (self.jobs.get(self.job_id) or {})
        receipt = message["ReceiptHandle"]
        if not job or job.get("status") in FINAL:  # a stray duplicate of a finished job's shard
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=receipt)
            return
        where = f"{shard.key} bytes {shard.start}-{shard.end}"
        started = time.monotonic()
        with VisibilityExtender(self.sqs, self.url, receipt, self.visibility_s):
            try:
                self._hold("score", shard.index)
                capture = ShardCapture.for_job(job, shard.index, self.scorer(job))
                output = self._score(job, shard, where, started, capture)
                self._hold("write", shard.index)
                part = write_part(
                    self.settings.data_bucket, part_key(job["output_prefix"], shard.index), output, job_id
                )
                if capture is not None:
                    capture.store(bootstrap.batch_capture_store())
                self._hold("count", shard.index)
                counted = self.jobs.mark_done(
                    job_id, shard.index, {**{k: part[k] for k in ("key", "rows", "bytes", "sha256")},
                                          "input_key": shard.key, "input_range": [shard.start, shard.end], "worker": self.worker_id},
                )  # fmt: skip
                _say(
                    f"shard {shard.index}: {part['rows']} rows -> {part['key']}"
                    + ("" if part["written"] else " (written by another worker: acknowledged)")
                    + ("" if counted else " (already counted)")
                )
                self.beat()  # a fresh record before the job may finish (its notice gives the cost so far)
                self._hold("finish", shard.index)
                finish_if_complete(self.ports, job_id)
            except Released:
                self.sqs.change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=receipt, VisibilityTimeout=0
                )
                raise
            except BadShard as exc:
                _say(f"shard {shard.index} cannot be scored: {exc}")
                self.jobs.mark_failed(
                    job_id, shard.index, str(exc), input_key=shard.key, input_range=[shard.start, shard.end]
                )
                finish_if_complete(self.ports, job_id)
            except Exception as exc:  # transient or unknown: another attempt, then the DLQ
                _say(f"shard {shard.index} attempt failed: {type(exc).__name__}: {exc}")
                self.jobs.record_error(job_id, shard.index, f"{type(exc).__name__}: {exc}", self.worker_id)
                self.jobs.add(job_id, failures=1)
                self.sqs.change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=receipt, VisibilityTimeout=0
                )
                return
        self.shard_seconds.append(time.monotonic() - started)
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=receipt)

    def _score(
        self,
        job: dict[str, Any],
        shard: Shard,
        where: str,
        started: float,
        capture: ShardCapture | None = None,
    ) -> ShardOutput:
        scorer = self.scorer(job)
        s3 = aws.client("s3")
        if self.watcher.noticed.is_set() and not self.can_finish(0.0, started):
            raise Released(f"shard {shard.index}: not started, too little time left")
        if shard.compressed:
            args: dict[str, Any] = {"Bucket": self.settings.data_bucket, "Key": shard.key}
            if shard.version_id and shard.version_id != "null":
                args["VersionId"] = shard.version_id
            header, pieces, total = gzip_pieces(s3.get_object(**args)["Body"].read(), self.chunk_bytes)
        else:
            header, total = _header(job, shard, self.settings), shard.bytes
            chunks = s3_range_chunks(
                s3,
                self.settings.data_bucket,
                shard.key,
                shard.version_id,
                shard.start,
                shard.end,
                self.chunk_bytes,
            )
            pieces = row_pieces(chunks)

        def check(done_bytes: int) -> None:
            if self.watcher.noticed.is_set() and not self.can_finish(done_bytes / max(total, 1), started):
                raise Released(f"shard {shard.index}: not enough time left to finish it")

        return score_pieces(
            pieces, header, scorer, where, check, observe=capture.observe if capture else None
        )

    def can_finish(self, fraction_done: float, started: float) -> bool:
        """After a notice: will the shard in hand be written before the instance goes (with a margin)?"""
        elapsed = time.monotonic() - started
        if fraction_done > 0:
            remaining = elapsed * (1 - fraction_done) / fraction_done
        elif self.shard_seconds:
            remaining = sum(self.shard_seconds) / len(self.shard_seconds)
        else:
            return False  # nothing to go by: give it back
        return remaining + FINISH_MARGIN_S < self.watcher.seconds_left()


def _hold_step(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


_headers: dict[tuple[str, str], dict[str, list[str]]] = {}


def _header(job: dict[str, Any], shard: Shard, settings: Settings) -> list[str]:
    """The shard's object header, from the job's immutable plan (read once per job)."""
    cache_key = (job["job_id"], job["plan_key"])
    if cache_key not in _headers:
        plan = json.loads(
            aws.client("s3").get_object(Bucket=settings.data_bucket, Key=job["plan_key"])["Body"].read()
        )
        _headers[cache_key] = {o["key"]: o["header"] for o in plan["objects"] if o.get("header")}
    return _headers[cache_key][shard.key]


def _load_pipeline(registry: RegistryReader, artifacts: ArtifactReader, model: str, version: int) -> Any:
    """The version's scikit-learn pipeline, unpickled only after its checksum matches the registry's."""
    import io

    import joblib

    doc = registry.version(model, version)
    if doc is None or "model.joblib" not in (doc.get("artifacts") or {}):
        raise ValueError(f"{model} v{version} has no model.joblib")
    data = fetch_artifact(artifacts, doc, "model.joblib", f"{model} v{version}")  # verified before unpickling
    return joblib.load(io.BytesIO(data))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scoring.worker")
    parser.add_argument("--job-id", required=True)
    args = parser.parse_args(argv)
    worker = Worker(args.job_id, Settings.from_env())
    _say(f"worker {worker.worker_id} for job {args.job_id}")
    return worker.run()


def leave(code: int) -> None:
    """End the process right after its last record: output flushed, then ``os._exit``. The
    interpreter's teardown (0.3-1 s with a model and clients loaded) would be worker time after
    the record that closes the attempt's worker-seconds: spent, and not counted."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    leave(main())
