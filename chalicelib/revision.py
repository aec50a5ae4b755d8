"""Which code a deployed function or job runs: the git revision `make deploy` built it from.

`make deploy` writes it into the function package (``chalicelib/REVISION``, not in git) and passes it
to the job image (``CODE_VERSION``); lineage and ``GET /health`` report it. Without either (a
working copy), the revision is read from git, else ``unknown``.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

REVISION_FILE = Path(__file__).with_name("REVISION")


@functools.cache
def code_revision() -> str:
    if os.environ.get("CODE_VERSION"):
        return os.environ["CODE_VERSION"]
    if REVISION_FILE.exists():
        return REVISION_FILE.read_text().strip() or "unknown"
    return git_revision(REVISION_FILE.parents[1]) or "unknown"


def git_revision(root: Path) -> str | None:
    """HEAD of the working copy at ``root``, with ``-dirty`` if files differ from it; None without git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}-dirty" if dirty else head
