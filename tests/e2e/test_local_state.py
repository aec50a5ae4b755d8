"""`mlops up` keeps its state across restarts, and a SIGKILL loses nothing a client was told had
succeeded: each test runs `mlops up` as a process with its own ports and state directory
(MLOPS_LOCAL_STATE), never the project's .mlops/state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from chalicelib.ingest.uploads import upload_id_for
from tests.support import MlopsUp, up_env

BIN = Path(sys.executable).parent
PROJECT = Path(__file__).resolve().parents[2]
BUCKET = "serverless-mlops-local-data"
LEDGER = "serverless-mlops-local-uploads"
DEADLINE_S = 180.0  # a hang guard only: every wait below ends on a recorded outcome


def wait_for(predicate: Any, timeout_s: float = DEADLINE_S, explain: Any = lambda: "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not reached within {timeout_s:.0f} s {explain()}")


def _env(tmp_path: Path) -> dict[str, str]:
    return up_env(tmp_path / "state")


class Up(MlopsUp):
    """`mlops up`, returned once started (its banner printed)."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        super().__init__(env, *args)
        self.wait_banner()


def _client(env: dict[str, str], service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{env['MLOPS_LOCAL_PORT']}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        # One attempt: a request the killed process never answered is not acknowledged.
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60),
    )


def _mlops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "mlops"), *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120
    )


def _put_contract(env: dict[str, str], tmp_path: Path, dataset: str) -> dict[str, Any]:
    contract = {
        "dataset": dataset,
        "columns": [
            {"name": "x", "type": "float", "classification": "public"},
            {"name": "y", "type": "integer", "classification": "public", "allowed": [0, 1]},
        ],
        "target": "y",
        "task": "classification",
    }
    path = tmp_path / f"{dataset}.json"
    path.write_text(json.dumps(contract))
    put = _mlops(env, "contract", "put", str(path))
    assert put.returncode == 0, put.stdout + put.stderr
    return contract


def _ledger_entry(env: dict[str, str], upload_id: str) -> dict[str, Any] | None:
    item = _client(env, "dynamodb").get_item(
        TableName=LEDGER, Key={"upload_id": {"S": upload_id}}, ConsistentRead=True
    )
    return item.get("Item")


def _ledger_keys(env: dict[str, str]) -> Counter[str]:
    """How many ledger entries name each object key."""
    pages = _client(env, "dynamodb").get_paginator("scan").paginate(TableName=LEDGER, ConsistentRead=True)
    return Counter(item["key"]["S"] for page in pages for item in page["Items"] if "key" in item)


def _rollback_status(env: dict[str, str], token: str | None) -> str:
    """An admin-only call: 401 without a valid token, 404 (no such model) with one."""
    extra = {"MLOPS_TOKEN": token} if token else {}
    done = _mlops({**env, **extra}, "models", "rollback", "persisted", "--reason", "test")
    return done.stderr


@pytest.mark.slow
def test_a_restart_keeps_data_ledger_contract_and_tokens_and_fresh_starts_empty(tmp_path):
    env = _env(tmp_path)
    up = Up(env)
    try:
        assert "state          new" in up.output
        contract = _put_contract(env, tmp_path, "persisted")
        created = _mlops(env, "tokens", "create", "alice", "--role", "admin")
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip()
        key = "incoming/persisted/day1.csv"
        version = _client(env, "s3").put_object(Bucket=BUCKET, Key=key, Body=b"x,y\n1.5,1\n2.5,0\n")[
            "VersionId"
        ]
        upload_id = upload_id_for(BUCKET, key, version)
        before = wait_for(lambda: _ledger_entry(env, upload_id))
        assert before["status"]["S"] == "valid"
    finally:
        up.stop()

    up = Up(env)
    try:
        assert "state          resumed from" in up.output, up.output
        body = _client(env, "s3").get_object(Bucket=BUCKET, Key=key, VersionId=version)["Body"].read()
        assert body == b"x,y\n1.5,1\n2.5,0\n"
        assert _ledger_entry(env, upload_id) == before  # the same entry: not processed again
        shown = _mlops(env, "contract", "get", "persisted")
        assert shown.returncode == 0 and json.loads(shown.stdout)["columns"] == contract["columns"], shown
        assert "404" in _rollback_status(env, token)  # the token still authenticates
        assert "401" in _rollback_status(env, None)
    finally:
        up.stop()

    up = Up(env, "--fresh")
    try:
        assert "state          new" in up.output, up.output
        listed = _client(env, "s3").list_object_versions(Bucket=BUCKET, Prefix="incoming/")
        assert listed.get("Versions", []) == []
        assert _ledger_entry(env, upload_id) is None
        assert "401" in _rollback_status(env, token)  # the token is gone with the rest
    finally:
        up.stop()


@pytest.mark.slow
def test_a_sigkill_mid_burst_loses_no_acknowledged_upload_and_the_ledger_records_each_once(tmp_path):
    env = _env(tmp_path)
    up = Up(env)
    acknowledged: list[tuple[str, str]] = []  # (key, version id) of every PUT answered 200
    failed: list[str] = []
    try:
        _put_contract(env, tmp_path, "burst")
        s3 = _client(env, "s3")

        def burst() -> None:
            for i in range(400):
                key = f"incoming/burst/part-{i:03d}.csv"
                try:
                    answer = s3.put_object(Bucket=BUCKET, Key=key, Body=f"x,y\n{i}.5,1\n{i}.25,0\n".encode())
                except Exception as exc:  # the process is gone: the burst ends
                    failed.append(f"{key}: {type(exc).__name__}")
                    return
                acknowledged.append((key, answer["VersionId"]))

        client = threading.Thread(target=burst, daemon=True)
        client.start()
        wait_for(lambda: len(acknowledged) >= 25)  # mid-burst, by progress
        up.kill()
        client.join(timeout=120)
        assert not client.is_alive()
    finally:
        if up.process.poll() is None:
            up.kill()
    assert failed, "the kill landed after the burst: it proves nothing"
    assert len(acknowledged) < 400

    up = Up(env)
    try:
        assert "state          resumed from" in up.output, up.output
        s3 = _client(env, "s3")
        for key, version in acknowledged:
            s3.head_object(Bucket=BUCKET, Key=key, VersionId=version)  # raises if lost
        ids = [upload_id_for(BUCKET, key, version) for key, version in acknowledged]
        wait_for(
            lambda: all(_ledger_entry(env, upload_id) for upload_id in ids),
            explain=lambda: f"missing: {[i for i in ids if not _ledger_entry(env, i)]}\n{up.output[-3000:]}",
        )
        counts = _ledger_keys(env)
        assert all(counts[key] == 1 for key, _ in acknowledged), counts
        assert all(n == 1 for n in counts.values()), counts  # unacknowledged ones too: never twice
    finally:
        up.stop()


def test_a_kill_during_a_snapshot_write_leaves_the_previous_snapshot(tmp_path):
    """The writer is stopped for good inside the new snapshot's fsync (its data partly or wholly
    written to the temporary file), then killed: the snapshot on disk is the previous one, whole."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SNAPSHOT_WRITER,
            str(tmp_path / "state"),
        ],
        cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": f"{PROJECT}:{PROJECT / 'scripts'}"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        lines = []
        for line in child.stdout:
            lines.append(line)
            if line.startswith("inside the fsync of snapshot 3"):
                break
        assert lines and lines[-1].startswith("inside the fsync of snapshot 3"), lines
        child.kill()
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    import pickle

    from mlops.localstate import StateStore

    store = StateStore(tmp_path / "state")
    saved = pickle.loads(store.snapshot_path.read_bytes())
    assert saved["n"] == 2 and saved["padding"] == bytes([2]) * 8_000_000
    assert store.remove_temporaries() == 1  # the torn new one, never read


_SNAPSHOT_WRITER = """
import os, pickle, sys, threading
from pathlib import Path
from mlops import localstate

store = localstate.StateStore(Path(sys.argv[1]))
real_fsync = localstate.os.fsync
current = {"n": 0}

def fsync(fd):
    if current["n"] == 3:
        print("inside the fsync of snapshot 3", flush=True)
        threading.Event().wait()  # stopped here until killed
    real_fsync(fd)

localstate.os.fsync = fsync
for n in range(1, 5):
    current["n"] = n
    store.write(pickle.dumps({"n": n, "padding": bytes([n]) * 8_000_000}), {})
    print(f"wrote snapshot {n}", flush=True)
"""
