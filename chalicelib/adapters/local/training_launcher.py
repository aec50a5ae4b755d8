"""Training runs as local child processes: ``python -m training.main --run-id R --dataset D``.

The process inherits the local cloud's endpoint and resource names and outlives the invocation
that started it, as a Batch job would; its output goes to ``.mlops/runs/<run id>.log``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from chalicelib.adapters.local import as_principal

PROJECT_DIR = Path(__file__).resolve().parents[3]


class LocalTrainingLauncher:
    def __init__(
        self, project_dir: Path = PROJECT_DIR, module: str = "training.main", submit: Any = None
    ) -> None:
        self.project_dir = project_dir
        self.module = module
        self.submit = submit  # the Batch launcher to submit through first (the local cloud's Batch)

    def launch(self, run_id: str, dataset: str) -> dict[str, Any]:
        if not run_id or not dataset:
            raise ValueError("run_id and dataset are required")
        submitted = self.submit.launch(run_id, dataset) if self.submit is not None else {}
        logs = self.project_dir / ".mlops" / "runs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{run_id}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.project_dir / "jobs"), str(self.project_dir), env.get("PYTHONPATH", "")]
        )
        env["MLOPS_CAPACITY"] = "local"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    *as_principal("training_job", ("-m", self.module)),
                    "--run-id",
                    run_id,
                    "--dataset",
                    dataset,
                ],
                cwd=self.project_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the invocation, as a Batch job would
            )
        launched = {
            "backend": "local",
            "pid": process.pid,
            "log": str(log_path.relative_to(self.project_dir)),
        }
        if submitted:
            launched["batch_job_id"] = submitted["job_id"]
        return launched
