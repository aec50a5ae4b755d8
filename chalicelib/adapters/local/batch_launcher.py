"""A batch job's workers as local child processes: ``python -m scoring.worker --job-id J``.

Each child gets the array index and attempt AWS Batch would give it (``AWS_BATCH_JOB_ARRAY_INDEX``,
``AWS_BATCH_JOB_ATTEMPT``), inherits the local cloud's endpoint and names, and outlives the
invocation that started it, as a Batch child would. Logs go to ``.mlops/batch/<job>-<index>.log``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from chalicelib.adapters.local import as_principal

PROJECT_DIR = Path(__file__).resolve().parents[3]
WORKER = ("-m", "scoring.worker")


class LocalWorkerLauncher:
    """``command``: what a worker runs after the interpreter (tests start something lighter)."""

    def __init__(
        self, project_dir: Path = PROJECT_DIR, command: tuple[str, ...] = WORKER, submit: Any = None
    ) -> None:
        self.project_dir = project_dir
        self.command = command
        self.submit = submit  # the Batch launcher to submit through first (the local cloud's Batch)

    def start(self, job_id: str, workers: int) -> dict[str, Any]:
        submitted = self.submit.start(job_id, workers) if self.submit is not None else {}
        pids = [self.launch(job_id, index).pid for index in range(workers)]
        started: dict[str, Any] = {"backend": "local", "workers": workers, "pids": pids}
        if submitted:
            started["batch_job_id"] = submitted["batch_job_id"]
        return started

    def launch(
        self, job_id: str, index: int, attempt: int = 1, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """One worker (array index ``index``); ``attempt`` > 1 is a restart, as Batch retries."""
        logs = self.project_dir / ".mlops" / "batch"
        logs.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.project_dir / "jobs"), str(self.project_dir), env.get("PYTHONPATH", "")]
        )
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
        env["AWS_BATCH_JOB_ATTEMPT"] = str(attempt)
        env.setdefault("MLOPS_CAPACITY", "local")
        # No instance metadata on a laptop: no spot notices unless a (fake) endpoint is configured.
        env.setdefault("MLOPS_IMDS_ENDPOINT", "")
        env.update(extra_env or {})
        with (logs / f"{job_id}-{index}.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, *as_principal("batch_scoring_job", self.command), "--job-id", job_id],
                cwd=self.project_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the invocation, as a Batch job would
            )
