"""Which statement of which policy the local cloud's calls needed: the policy mutation test.

``mlops iam-report [DIR]`` reads what a run recorded (``build/iam/``: ``principals.json``, the
policies of every function, job and worker; ``calls.jsonl``, every call they made, checked) and, for
each statement, computes which recorded calls removing it would refuse. A statement no call needs is
unused by everything the run did: either the run misses a path (add a test) or the permission is not
needed (remove it). Statements only the Lambda service uses on a function's behalf (logs, traces) are
listed apart. Exits 1 if any call was refused or any statement is unused. ``make test`` runs it after
the suite, over the calls of every local cloud the suite started.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlops import PROJECT_DIR
from mlops.localiam import Principal, statement_needs

DEFAULT_DIR = PROJECT_DIR / "build" / "iam"


def report(directory: Path) -> tuple[list[str], int]:
    principals = {
        name: Principal(name, policies)
        for name, policies in json.loads((directory / "principals.json").read_text()).items()
    }
    calls = []
    for line in (directory / "calls.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            calls.append(json.loads(line))
    lines, problems = [], 0
    refused = sorted(
        {f"{c['principal']}: {c['action']} on {c['resource']}" for c in calls if not c["allowed"]}
    )
    for text in refused:
        lines.append(f"REFUSED  {text}")
    problems += len(refused)
    for use in statement_needs(principals, calls):
        where = f"{use.principal} {use.policy}/{use.sid}"
        if use.needed_by:
            lines.append(f"needed   {where}: {len(use.needed_by)} call(s), e.g. {use.needed_by[0]}")
            for action in use.unused_actions:
                lines.append(f"UNUSED   {where}: action {action}: no recorded call needs it (test or remove)")
                problems += 1
        elif use.runtime_only:
            lines.append(f"runtime  {where}: used by the Lambda service on the function's behalf")
        else:
            lines.append(f"UNUSED   {where}: no recorded call needs it (test the path, or remove it)")
            problems += 1
    lines.append(f"{len(calls)} calls by {len(principals)} principals; {problems} problem(s)")
    return lines, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops iam-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    lines, problems = report(args.directory)
    print("\n".join(lines))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
