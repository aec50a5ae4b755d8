"""A stage's deploy state, where another operator or CI finds it: ``s3://<models bucket>/deploy/<stage>/``.

Chalice keeps what it deployed in ``.chalice/deployed/<stage>.json``, in one checkout (and the
file is git-ignored: it names one account's resources). ``mlops deploy`` keeps it in the stage's
models bucket instead, next to two more objects:

* ``deploy/<stage>/chalice-deployed.json``: Chalice's record, fetched before ``chalice deploy``
  (the shared copy wins over a local one) and stored after it, also after a failure midway
  (``mlops.chalicedeploy`` records partial results);
* ``deploy/<stage>/progress.json``: the last attempt: who, which code revision, which image, and
  each step's outcome; the next run prints it and carries the image forward;
* ``deploy/<stage>/lock``: created only if absent (``If-None-Match: *``), removed when the run ends;
  a second deploy of the stage stops with the holder's name instead of interleaving with the first.
  A crashed run's lock is broken with ``mlops deploy --break-lock``.

The bucket is versioned, so every earlier record stays readable. No function's role may read or
write ``deploy/`` (their statements name ``models/`` only). Before the data plane exists (a first
deploy) there is no bucket: the state is kept locally and stored once step 3 has made it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DeployLocked(RuntimeError):
    """Another deploy of this stage holds the lock."""


@dataclass
class DeployState:
    s3: Any
    bucket: str
    stage: str

    @property
    def prefix(self) -> str:
        return f"deploy/{self.stage}/"

    def exists(self) -> bool:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except self.s3.exceptions.ClientError:
            return False
        return True

    # --- the lock -----------------------------------------------------------------------------

    def lock(self, owner: dict[str, Any]) -> None:
        body = json.dumps({**owner, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=self.prefix + "lock", Body=body.encode(), IfNoneMatch="*"
            )
        except self.s3.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
            holder = self._get_json("lock") or {}
            raise DeployLocked(
                f"another deploy of {self.stage} holds the lock since {holder.get('since', '?')} "
                f"({holder.get('by', '?')}, attempt {holder.get('attempt', '?')}); if that run is dead, "
                f"run again with --break-lock"
            ) from exc

    def unlock(self) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=self.prefix + "lock")

    # --- progress -----------------------------------------------------------------------------

    def progress(self) -> dict[str, Any] | None:
        return self._get_json("progress.json")

    def save_progress(self, progress: dict[str, Any]) -> None:
        self._put_json("progress.json", progress)

    # --- chalice's record -----------------------------------------------------------------------

    def fetch_chalice(self, local: Path) -> bool:
        """Write the shared record over the local one; False if there is none."""
        record = self._get_json("chalice-deployed.json")
        if record is None:
            return False
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(json.dumps(record, indent=2) + "\n")
        return True

    def store_chalice(self, local: Path) -> bool:
        if not local.exists():
            return False
        self._put_json("chalice-deployed.json", json.loads(local.read_text()))
        return True

    def forget(self) -> None:
        """After a destroy: the record names resources that are gone."""
        for name in ("chalice-deployed.json", "progress.json"):
            self.s3.delete_object(Bucket=self.bucket, Key=self.prefix + name)

    def _get_json(self, name: str) -> dict[str, Any] | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        result: dict[str, Any] = json.loads(body)
        return result

    def _put_json(self, name: str, value: dict[str, Any]) -> None:
        body = json.dumps(value, indent=2, sort_keys=True).encode()
        self.s3.put_object(
            Bucket=self.bucket, Key=self.prefix + name, Body=body, ContentType="application/json"
        )
