"""Which statement of which policy the local cloud's calls needed: the policy mutation test.

``mlops iam-report [DIR]`` reads what runs recorded (``build/iam/<cloud>/``, one folder per local
cloud: ``principals.json``, the policies of every function, job and worker; ``calls.jsonl``, every
call they made, checked) and, for
each statement, computes which recorded calls removing it would refuse. A statement no call needs is
unused by everything the run did: either the run misses a path (add a test) or the permission is not
needed (remove it). Statements only the Lambda service uses on a function's behalf (logs, traces) are
listed apart. Exits 1 if any call was refused (a path that AWS would refuse); unused statements and
actions are listed (which of a run's paths ran can depend on timing, so they are not a verdict a
run can flip: each is a test to write or a permission to remove). ``make test`` runs it after the
suite, over the record of every local cloud the suite started.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mlops import PROJECT_DIR
from mlops.localiam import Principal, as_list, statement_needs

DEFAULT_DIR = PROJECT_DIR / "build" / "iam"


def write_record(directory: Path, principals: dict[str, Any], calls: list[dict[str, Any]]) -> None:
    """One local cloud's record: its principals' policies and every call they made."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "principals.json").write_text(json.dumps(principals, indent=1))
    (directory / "calls.jsonl").write_text("".join(json.dumps(c) + "\n" for c in calls), encoding="utf-8")


def records(directory: Path) -> list[Path]:
    """The record folders under ``directory`` (or ``directory`` itself if it is one)."""
    if (directory / "principals.json").exists():
        return [directory]
    return sorted(p.parent for p in directory.glob("*/principals.json"))


def report(directory: Path) -> tuple[list[str], int]:
    """Each statement (and action) is needed if a call of any recorded cloud needs it: each cloud is
    judged against its own policies (its key, its names)."""
    needed: dict[tuple[str, str, str], list[str]] = {}
    runtime: set[tuple[str, str, str]] = set()
    actions: dict[tuple[str, str, str], set[str]] = {}  # actions some cloud found unused
    used_actions: dict[tuple[str, str, str], set[str]] = {}  # ... and those no cloud found unused
    refused: set[str] = set()
    total = 0
    folders = records(directory)
    for folder in folders:
        principals = {
            name: Principal(name, policies)
            for name, policies in json.loads((folder / "principals.json").read_text()).items()
        }
        calls = [
            json.loads(line)
            for line in (folder / "calls.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        total += len(calls)
        refused |= {
            f"{c['principal']}: {c['action']} on {c['resource']}"
            for c in calls
            if not c["allowed"] and not c.get("expected_refusal")
        }
        for use in statement_needs(principals, calls):
            key = (use.principal, use.policy, use.sid)
            needed.setdefault(key, []).extend(use.needed_by)
            if use.runtime_only:
                runtime.add(key)
            if use.needed_by:
                statement = _statement(principals[use.principal], use.policy, use.sid)
                all_actions = {str(a) for a in as_list(statement.get("Action", []))}
                used_actions.setdefault(key, set()).update(all_actions - set(use.unused_actions))
                actions.setdefault(key, set()).update(use.unused_actions)
    lines, problems, gaps = [], len(refused), 0
    lines += [f"REFUSED  {text}" for text in sorted(refused)]
    for key, calls_needing in needed.items():
        where = f"{key[0]} {key[1]}/{key[2]}"
        if calls_needing:
            lines.append(f"needed   {where}: {len(calls_needing)} call(s), e.g. {sorted(calls_needing)[0]}")
            for action in sorted(actions.get(key, set()) - used_actions.get(key, set())):
                lines.append(f"UNUSED   {where}: action {action}: no recorded call needs it (test or remove)")
                gaps += 1
        elif key in runtime:
            lines.append(f"runtime  {where}: used by the Lambda service on the function's behalf")
        else:
            lines.append(f"UNUSED   {where}: no recorded call needs it (test the path, or remove it)")
            gaps += 1
    lines.append(
        f"{total} authorisations in {len(folders)} local cloud(s): {len(refused)} refused; "
        f"{gaps} statement(s) or action(s) no recorded call needs"
    )
    return lines, problems


def _statement(principal: Principal, policy: str, sid: str) -> dict[str, Any]:
    for index, statement in enumerate(as_list(principal.policies[policy].get("Statement", []))):
        if str(statement.get("Sid") or index) == sid:
            return dict(statement)
    raise KeyError(sid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops iam-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    lines, problems = report(args.directory)
    print("\n".join(lines))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
