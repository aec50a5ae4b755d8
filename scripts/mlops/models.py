"""``mlops models ...``: the model registry through the HTTP API, as a person with a token uses it.

The API is the running local cloud's (``mlops up`` writes its address to ``.mlops/local.json``) or
``MLOPS_API_URL`` (a deployed stage: the URL ``chalice deploy`` printed). The token comes from
``MLOPS_TOKEN`` (``mlops tokens create NAME --role approver``); changes need one in every stage,
reads in deployed stages. Going through the API, not the tables, is the point: the authorizer
decides, and the audit trail records who did it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops.localcloud import STATE_FILE


class ApiError(Exception):
    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.body = body  # the API's JSON answer, if it was JSON (a 400 of /predict names its problems)


def api_url() -> str:
    if os.environ.get("MLOPS_API_URL"):
        return os.environ["MLOPS_API_URL"].rstrip("/")
    if STATE_FILE.exists():
        url = json.loads(STATE_FILE.read_text()).get("api_url")
        if url:
            return str(url).rstrip("/")
    raise SystemExit("no API: start the local cloud with `mlops up`, or set MLOPS_API_URL")


def call(method: str, path: str, body: Any = None, token: str | None = None, base: str | None = None) -> Any:
    """One API call; returns the JSON body, raises ``ApiError`` with the API's message."""
    headers = {"Content-Type": "application/json"}
    token = token if token is not None else os.environ.get("MLOPS_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request((base or api_url()) + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        doc = None
        try:
            doc = json.loads(raw)
            message = doc.get("Message") or doc.get("message") or raw.decode()
        except (ValueError, AttributeError):
            message = raw.decode(errors="replace")
        if exc.code == 401:
            message += " (set MLOPS_TOKEN to a token from `mlops tokens create NAME --role ROLE`)"
        raise ApiError(exc.code, str(message), doc) from None


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    models = subparsers.add_parser(
        "models",
        help="the model registry: list, show, approve, reject, rollback, audit, history, rollouts",
    )
    sub = models.add_subparsers(dest="models_action", required=True)
    sub.add_parser("list", help="every model with its champion")
    show = sub.add_parser("show", help="a model's champion and versions, or one version in full")
    show.add_argument("model")
    show.add_argument(
        "version", nargs="?", type=int, help="this version in full: gates, metrics, lineage (JSON)"
    )
    for action, helptext in (("approve", "approve a version pending approval (it becomes champion, or "
                                          "rolls out under the contract's rollout policy)"),
                             ("reject", "reject a version")):  # fmt: skip
        p = sub.add_parser(action, help=helptext)
        p.add_argument("model")
        p.add_argument("version", type=int)
        p.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    rollback = sub.add_parser("rollback", help="bring back the previous champion (from the audit ledger)")
    rollback.add_argument("model")
    rollback.add_argument("--reason", required=True)
    rollout = sub.add_parser(
        "rollout",
        help="roll a version out: a growing share of the traffic, guarded, then champion "
        "(schedule: the options, else the contract's promotion.rollout)",
    )
    rollout.add_argument("model")
    rollout.add_argument("version", type=int)
    rollout.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    strategy = rollout.add_mutually_exclusive_group()
    strategy.add_argument("--canary", type=float, metavar="PERCENT", help="this share first, then all of it")
    strategy.add_argument("--linear", type=float, metavar="PERCENT", help="+this share every step")
    rollout.add_argument("--bake", metavar="DURATION", help="each step held this long: 15m, 90s, 1h")
    rollout.add_argument(
        "--every", metavar="DURATION", help="the same as --bake (reads better with --linear)"
    )
    for action, helptext in (
        ("pause", "hold the running rollout at its share (still guarded)"),
        ("resume", "let a paused rollout step again"),
        ("abort", "end the running rollout: all traffic back to the champion"),
    ):
        p = sub.add_parser(action, help=helptext)
        p.add_argument("model")
        p.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    status = sub.add_parser(
        "rollout-status", help="the running or last rollout: progress, guard figures, events"
    )
    status.add_argument("model")
    audit = sub.add_parser("audit", help="the model's audit trail: every champion change, who and why")
    audit.add_argument("model")
    history = sub.add_parser(
        "history", help="what served when: every champion's period and why it changed, or the one at --at"
    )
    history.add_argument("model")
    history.add_argument(
        "--at", help="an ISO 8601 instant (2026-11-30T12:00:00Z; without an offset: UTC): the champion then"
    )
    models.add_argument("--json", action="store_true", help="print the API's JSON")
    return models


def run(args: argparse.Namespace) -> int:
    return reporting_api_errors(_run, args)


def reporting_api_errors(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a CLI command that calls the API: an API error is printed (status and message), exit 1."""
    try:
        return command(args)
    except ApiError as exc:
        print(f"error {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    action = args.models_action
    if action == "list":
        doc = call("GET", "/models")
        if args.json:
            return _dump(doc)
        print(f"{'model':<24} {'champion':>8} {'versions':>8}  pending approval")
        for m in doc["models"]:
            champion = _label(m["champion"]) if m["champion"] else "-"
            pending = ", ".join(f"v{v}" for v in m["pending_approval"]) or "-"
            print(f"{m['model']:<24} {champion:>8} {m['versions']:>8}  {pending}")
        return 0
    if action == "show" and args.version is not None:
        return _dump(call("GET", f"/models/{args.model}/versions/{args.version}"))
    if action == "show":
        doc = call("GET", f"/models/{args.model}")
        if args.json:
            return _dump(doc)
        print_versions(doc)
        if doc.get("rollout"):
            print_rollout(doc["rollout"])
        return 0
    if action in ("approve", "reject"):
        doc = call("POST", f"/models/{args.model}/versions/{args.version}/{action}", {"reason": args.reason})
        if args.json:
            return _dump(doc)
        if action == "approve" and doc.get("action") == "rollout_started":
            print(f"{args.model} v{args.version} approved: it rolls out (the contract's rollout policy)")
            print_rollout(doc["rollout"])
        elif action == "approve":
            print(f"{args.model} v{args.version} approved: it is the champion (audit {doc['audit']['id']})")
        else:
            print(f"{args.model} v{args.version} rejected")
        return 0
    if action == "rollback":
        doc = call("POST", f"/models/{args.model}/rollback", {"reason": args.reason})
        if args.json:
            return _dump(doc)
        entry = doc["audit"]
        print(f"{args.model}: champion v{entry['from_version']} -> v{entry['to_version']} (rolled back)")
        return 0
    if action in ("rollout", "pause", "resume", "abort", "rollout-status"):
        return run_rollout(args)
    if action == "audit":
        doc = call("GET", f"/models/{args.model}/audit")
        if args.json:
            return _dump(doc)
        print_audit(doc["entries"])
        return 0
    if action == "history":
        return run_history(args)
    raise SystemExit(f"unknown models action {action}")


WIDTH = 100  # a terminal line; reasons wrap at word boundaries under their version, never cut


def print_wrapped(text: str, indent: int, out: Any = None) -> None:
    """``text`` in full, wrapped at word boundaries, each line indented (a longer word stays whole)."""
    import textwrap

    lines = textwrap.wrap(text, width=WIDTH - indent, break_long_words=False, break_on_hyphens=False)
    for line in lines:
        print(" " * indent + line, file=out)


def _label(version: Any) -> str:
    return "none" if version is None else f"v{version}"


def _figure(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def comparison_line(compared: dict[str, Any] | None) -> str | None:
    """``vs v2 on the same 96 rows: rmse 8.1234 vs 8.4567; earlier slice (48 rows) 9.1000 vs 8.2000;
    new slice (48 rows) 7.0000 vs 8.9000``: the version's figure first, the champion's second (a
    slice without rows is left out)."""
    if not compared:
        return None
    metric = compared["metric"]
    text = (
        f"vs v{compared['against']} on the same {compared.get('rows') or 0} rows: {metric} "
        f"{_figure(compared.get('candidate'))} vs {_figure(compared.get('champion'))}"
    )
    for name, part in (compared.get("slices") or {}).items():
        if part.get("rows"):  # an empty slice (every row from uploads the champion saw) says nothing
            text += f"; {name} slice ({part['rows']} rows) {_figure(part.get('candidate'))} vs {_figure(part.get('champion'))}"
    return text


def print_versions(doc: dict[str, Any], out: Any = None) -> None:
    """The champion, then per version its line (the metric on its own holdout) and, below it: its
    metric beside the champion's on the same rows, both slices (what the gates compared); the gates'
    reason; a taint; and (when a person or a champion change moved it since) who moved it to its
    status and why: every reason in full."""
    out = out or sys.stdout
    print(f"{doc['model']}: champion {_label(doc.get('champion'))}", file=out)
    print(f"  {'ver':>4}  {'status':<17} {'family':<24} {'metric':<9} {'own':>7}  decision", file=out)
    for v in doc["versions"]:
        print(
            f"  {'v' + str(v['version']):>4}  {v['status']:<17} {v.get('family') or '-'!s:<24} "
            f"{v.get('primary_metric') or '-'!s:<9} {_figure(v.get('primary_value')):>7}  {v.get('decision') or '-'}",
            file=out,
        )
        line = comparison_line(v.get("compared"))
        if line:
            print_wrapped(line, 8, out)
        if v.get("tainted"):
            print_wrapped(v["tainted"], 8, out)
        if v.get("reason"):
            print_wrapped(f"gates: {v['reason']}", 8, out)
        moved, by = v.get("status_reason"), v.get("status_by")
        if moved and moved != v.get("reason") and by not in (None, "registry"):
            print_wrapped(f"{v['status']}, by {by}: {moved}", 8, out)


def print_audit(entries: list[dict[str, Any]], out: Any = None) -> None:
    """Every champion change: its line, then its reason in full (and what it superseded)."""
    out = out or sys.stdout
    for e in entries:
        print(
            f"  #{e['seq']:<3} {e['at'][:19]}  {e['action']:<8} {_label(e.get('from_version')):>4} -> "
            f"v{e['to_version']:<3} by {e['who']}",
            file=out,
        )
        print_wrapped(e["reason"], 8, out)
        if e.get("superseded"):
            print_wrapped("superseded: " + ", ".join(f"v{v}" for v in e["superseded"]), 8, out)


# --- mlops models rollout, pause, resume, abort, rollout-status ------------------------------------


def run_rollout(args: argparse.Namespace) -> int:
    """Start, pause, resume or abort a rollout (``POST /models/M/rollout[/ACTION]``), or show it
    (``GET /models/M/rollout``)."""
    from urllib.parse import quote

    path = f"/models/{quote(args.model, safe='')}/rollout"
    action = args.models_action
    if action == "rollout-status":
        doc = call("GET", path)
        if args.json:
            return _dump(doc)
        if doc.get("rollout") is None:
            print(f"{args.model} has never had a rollout")
            return 0
        print_rollout(doc["rollout"])
        print_rollout_events(doc.get("events") or [])
        return 0
    if action == "rollout":
        body: dict[str, Any] = {"version": args.version, "reason": args.reason}
        for name in ("canary", "linear", "bake", "every"):
            if getattr(args, name) is not None:
                body[name] = getattr(args, name)
        doc = call("POST", path, body)
    else:
        doc = call("POST", f"{path}/{action}", {"reason": args.reason})
    if args.json:
        return _dump(doc)
    print_rollout(doc["rollout"])
    return 0


def _percent(share: Any) -> str:
    return f"{share:g}%" if isinstance(share, int | float) else "-"


def _since(instant: Any) -> str:
    if not isinstance(instant, str):
        return "-"
    return instant[:19].replace("T", " ") + (" UTC" if instant.endswith("+00:00") else "")


def print_rollout(pointer: dict[str, Any], out: Any = None) -> None:
    """A rollout's progress: which version against which champion, its status, step k of n and the
    candidate's share since when, the schedule, who started it and why, how it ended; then the last
    guard figures (``print_guards``)."""
    out = out or sys.stdout
    schedule = pointer.get("schedule") or {}
    steps = schedule.get("steps") or []
    number = pointer.get("number")
    status = pointer.get("status")
    head = f"rollout r{number} of v{pointer.get('candidate')} against champion v{pointer.get('champion')}: {status}"
    if status in ("active", "paused"):
        step = int(pointer.get("step") or 0) + 1
        head += (
            f", step {step} of {len(steps)}, {_percent(pointer.get('share'))} of the traffic "
            f"since {_since(pointer.get('step_started_at'))}"
        )
    else:
        head += f" at {_since(pointer.get('ended_at'))}"
    print(head, file=out)
    if steps:
        bake = int(schedule.get("bake_s") or 0)
        shares = " -> ".join(_percent(s) for s in steps)
        print_wrapped(
            f"schedule: {schedule.get('strategy')} {shares}, each step held {bake // 60} min {bake % 60} s",
            2,
            out,
        )
    print_wrapped(
        f"started {_since(pointer.get('started_at'))} by {pointer.get('by')}: {pointer.get('reason')}", 2, out
    )
    if pointer.get("end_reason"):
        print_wrapped(f"{status}: {pointer['end_reason']}", 2, out)
    print_guards(pointer.get("evaluation"), out)


def _guard_rows(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """The guards of an evaluation, as a list (``[{"name", "value", "limit", "breached"}]``) or a map
    by name (``{"error_rate": {"value", "limit", "breached"}}``)."""
    guards = evaluation.get("guards")
    if isinstance(guards, dict):
        return [{"name": k, **(v if isinstance(v, dict) else {"value": v})} for k, v in guards.items()]
    if isinstance(guards, list):
        return [g for g in guards if isinstance(g, dict)]
    return []


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def print_guards(evaluation: dict[str, Any] | None, out: Any = None) -> None:
    """The last guard figures on the rollout (what the evaluator measured at its last step or
    abort): one row per guard, value against limit and whether it breached; the evaluation's other
    plain figures (requests, window...) on one line. Nothing measured yet: says so."""
    out = out or sys.stdout
    if not evaluation:
        print("  guards: no figures yet", file=out)
        return
    plain = {k: v for k, v in evaluation.items() if k != "guards" and not isinstance(v, dict | list)}
    if plain:
        print_wrapped("last evaluation: " + ", ".join(f"{k} {_cell(v)}" for k, v in plain.items()), 2, out)
    rows = _guard_rows(evaluation)
    if not rows:
        return
    print(f"    {'guard':<22} {'value':>10} {'limit':>10}  breached", file=out)
    for row in rows:
        print(
            f"    {_cell(row.get('name')):<22} {_cell(row.get('value')):>10} {_cell(row.get('limit')):>10}  "
            f"{_cell(row.get('breached'))}",
            file=out,
        )


def print_rollout_events(events: list[dict[str, Any]], out: Any = None) -> None:
    """Every change of the rollout, oldest first: when, what, the share before and after, who, why
    (and the guard that aborted it)."""
    out = out or sys.stdout
    for e in events:
        print(
            f"  #{e.get('revision'):<3} {_since(e.get('at'))}  {e.get('action'):<8} "
            f"{_percent(e.get('share_from')):>5} -> {_percent(e.get('share_to')):<5} by {e.get('by')}",
            file=out,
        )
        reason = str(e.get("reason"))
        print_wrapped(f"guard {e['guard']}: {reason}" if e.get("guard") else reason, 8, out)


# --- mlops models history --------------------------------------------------------------------------


def run_history(args: argparse.Namespace) -> int:
    """``--at T``: the champion at T (``GET /models/M/champion?at=T``); else every period, from the
    audit trail (``GET /models/M/audit``) read by the same rules (``chalicelib.registry.history``)."""
    from urllib.parse import quote

    from chalicelib.registry.history import timeline

    if args.at is not None:
        doc = call("GET", f"/models/{quote(args.model, safe='')}/champion?at={quote(args.at, safe='')}")
        if args.json:
            return _dump(doc)
        print_champion_at(doc)
        return 0
    entries = call("GET", f"/models/{quote(args.model, safe='')}/audit")["entries"]
    periods = timeline(args.model, entries)
    if args.json:
        return _dump({"model": args.model, "periods": periods})
    print_history(args.model, periods)
    return 0


def _when(instant: str | None) -> str:
    return "now" if instant is None else instant.replace("T", " ").replace("+00:00", " UTC")


def _why(change: dict[str, Any]) -> str:
    frm = "none" if change.get("from_version") is None else f"v{change['from_version']}"
    return (
        f"#{change.get('seq')} {change.get('action')} {frm} -> v{change.get('to_version')} "
        f"by {change.get('who')}: {change.get('reason')}"
    )


def print_history(model: str, periods: list[dict[str, Any]], out: Any = None) -> None:
    out = out or sys.stdout
    if not periods:
        print(f"{model} has never had a champion", file=out)
        return
    print(f"{model}: {len(periods)} champion change(s), oldest first", file=out)
    for p in periods:
        champion = "none" if p["champion"] is None else f"v{p['champion']}"
        print(f"  {champion:<5} from {_when(p['since'])} until {_when(p['until'])}", file=out)
        print(f"        {_why(p['change'])}", file=out)


def print_champion_at(doc: dict[str, Any], out: Any = None) -> None:
    out = out or sys.stdout
    champion = "none" if doc.get("champion") is None else f"v{doc['champion']}"
    print(f"{doc['model']} at {_when(doc['at'])}: champion {champion}", file=out)
    if doc.get("change"):
        print(f"  since {_when(doc['since'])} until {_when(doc['until'])}", file=out)
        print(f"  {_why(doc['change'])}", file=out)
    elif doc.get("note"):
        print(f"  {doc['note']}", file=out)


# --- mlops predict ----------------------------------------------------------------------------------


def add_predict_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict", help="score a CSV or JSON file with a model's champion (or --version) over the HTTP API"
    )
    p.add_argument("model")
    p.add_argument("file", help='CSV with a header, or JSON: {"records": [...]} or a list of records')
    p.add_argument("--version", type=int, help="a pinned version instead of the champion")
    p.add_argument("--json", action="store_true", help="print the API's JSON responses")
    return p


@dataclass(frozen=True)
class FileRecord:
    """One record of the file with where it is: ``label`` is how the output names it, the way the
    validation report names rows (``row 3 (line 5)``: data rows from 1, the header is row 0, the
    line where the row starts, header on line 1, blank lines skipped) or, in a JSON file, its index
    (``records[2]``)."""

    label: str
    record: Any
    where: dict[str, int]  # {"row": 3, "line": 5} or {"record": 2}: the same, for --json


def read_records(path: str, schema: dict[str, Any] | None) -> list[FileRecord]:
    """A file's records as JSON values, each with where it is in the file. CSV cells are typed by the
    model's input schema (numbers, booleans, text; an empty cell is null); columns the model does not
    take are dropped; a cell missing from a short row is left out (the API names it)."""
    import csv
    import io
    from pathlib import Path

    from chalicelib.validation.contract import header_names

    text = Path(path).read_text(encoding="utf-8")
    if path.lower().endswith(".json"):
        doc = json.loads(text)
        records = doc.get("records") if isinstance(doc, dict) else doc
        if not isinstance(records, list):
            raise SystemExit(f'{path}: expected {{"records": [...]}} or a list of records')
        return [FileRecord(f"records[{i}]", r, {"record": i}) for i, r in enumerate(records)]
    types = {f["name"]: f["type"] for f in (schema or {}).get("features", [])}
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = header_names(next(reader, []))
    out: list[FileRecord] = []
    while True:
        start = reader.line_num + 1  # the line this row starts on (a quoted field may span more)
        try:
            cells = next(reader)
        except StopIteration:
            break
        if not cells:  # a blank line: not a row, as validation skips it
            continue
        record = {k: _typed(v, types[k]) for k, v in zip(header, cells, strict=False) if k in types}
        row = len(out) + 1
        out.append(FileRecord(f"row {row} (line {start})", record, {"row": row, "line": start}))
    return out


def _typed(cell: str, kind: str) -> Any:
    """A CSV cell as the JSON value of its feature, read as validation reads it (the one number
    grammar, the contract's boolean spellings); a cell that does not read is sent as written, for
    the API to name its record and field."""
    from chalicelib.validation import numbers
    from chalicelib.validation.contract import BOOLEAN_FALSE, BOOLEAN_TRUE

    if cell == "":
        return None
    if kind in ("integer", "float"):
        number = numbers.read_number(cell, kind).value
        return cell if number is None else number
    if kind == "boolean":
        lowered = cell.strip().lower()
        return True if lowered in BOOLEAN_TRUE else False if lowered in BOOLEAN_FALSE else cell
    return cell


def run_predict(args: argparse.Namespace) -> int:
    """Score every record of the file; print one answer per record, in the file's order, named as
    in the file: its prediction, or why the API refused it (the other records are still scored).
    Exit 0 every record answered, 1 some refused or the API failed."""
    try:
        version = args.version
        if version is None:
            version = call("GET", f"/models/{args.model}").get("champion")
            if version is None:
                print(f"error: {args.model} has no champion yet", file=sys.stderr)
                return 1
        doc = call("GET", f"/models/{args.model}/versions/{version}")
        records = read_records(args.file, doc.get("input_schema"))
        path = (
            f"/models/{args.model}/versions/{args.version}/predict"
            if args.version
            else f"/models/{args.model}/predict"
        )
        answers: list[dict[str, Any]] = []
        served: set[Any] = set()
        for start in range(0, len(records), CHUNK):
            answers.extend(_score(path, records[start : start + CHUNK], served))
    except ApiError as exc:
        print(f"error {exc}", file=sys.stderr)
        return 1
    refused = sum(1 for a in answers if "problems" in a)
    shown = ", ".join(f"v{v}" for v in sorted(served, key=str)) or "none"
    if args.json:
        _dump({"model": args.model, "version": _one(served), "predictions": answers})
        return 1 if refused else 0
    print(
        f"{args.model} {shown}: {len(answers) - refused} prediction(s)"
        + (f", {refused} record(s) refused" if refused else "")
    )
    for item, answer in zip(records, answers, strict=True):
        if "problems" in answer:
            why = "; ".join(
                (f"field {p['field']!r}: " if p.get("field") else "") + str(p.get("problem"))
                for p in answer["problems"]
            )
            print(f"  {item.label:<22} refused: {why}")
            continue
        probabilities = answer.get("probabilities")
        odds = "  ".join(f"p({k})={v:.4f}" for k, v in probabilities.items()) if probabilities else ""
        print(f"  {item.label:<22} {answer['prediction']!s:<12} {odds}".rstrip())
    return 1 if refused else 0


def _one(served: set[Any]) -> Any:
    return next(iter(served)) if len(served) == 1 else sorted(served, key=str) or None


def _score(path: str, chunk: list[FileRecord], served: set[Any]) -> list[dict[str, Any]]:
    """One answer per record of the chunk, in order: the API's prediction, or the problems it named
    for that record. The API refuses a request as a whole and names up to 20 problems: the named
    records are set aside and the rest sent again, until the rest is scored."""
    answers: list[dict[str, Any] | None] = [None] * len(chunk)
    pending = list(range(len(chunk)))
    while pending:
        try:
            response = call("POST", path, {"records": [chunk[i].record for i in pending]})
        except ApiError as exc:
            named = _record_problems(exc, len(pending))
            if not named:
                raise
            for index, problems in named.items():
                answers[pending[index]] = {**chunk[pending[index]].where, "problems": problems}
            pending = [i for n, i in enumerate(pending) if n not in named]
            continue
        served.add(response["version"])
        for i, prediction in zip(pending, response["predictions"], strict=True):
            answers[i] = {**chunk[i].where, **prediction}
        pending = []
    return [a for a in answers if a is not None]


def _record_problems(exc: ApiError, sent: int) -> dict[int, list[dict[str, Any]]]:
    """A 400's problems by the record (its index in the request) they name; {} when the request as a
    whole was refused (no record named), so the caller reports it."""
    body = exc.body if isinstance(exc.body, dict) else {}
    problems = body.get("problems") if exc.status == 400 else None
    named: dict[int, list[dict[str, Any]]] = {}
    for problem in problems if isinstance(problems, list) else []:
        record = problem.get("record") if isinstance(problem, dict) else None
        if not isinstance(record, int) or isinstance(record, bool) or not 0 <= record < sent:
            return {}
        named.setdefault(record, []).append(
            {"field": problem.get("field"), "problem": problem.get("problem")}
        )
    return named


CHUNK = 500  # records per request (the API takes up to 1000)


def _dump(doc: Any) -> int:
    print(json.dumps(doc, indent=2, default=str))
    return 0
