"""``mlops outcomes send MODEL FILE.csv``: send true labels for a model's predictions over the HTTP API
(the running local cloud's, or ``MLOPS_API_URL``) with ``MLOPS_TOKEN`` (a reporter's, or above).

The file has a header with ``label`` and ``request_id`` (and ``index``: the record's position in the
request, 0 if empty) or ``row_id``, one outcome a row. Every row is checked first against the model's
contract (the checks the API applies): if any row is bad, each is named and nothing is sent. Then
the outcomes go in requests of up to 1,000, each stored whole by the API. Uploading the file under
``outcomes/<model>/`` in the data bucket does the same asynchronously (bad rows quarantined).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops import models  # models.call at call time: one place to stand in for the HTTP API
from mlops.models import _dump, reporting_api_errors

CHUNK = 1000  # outcomes per request (the API's limit)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    outcomes = subparsers.add_parser("outcomes", help="send true labels (outcomes) for a model's predictions")
    sub = outcomes.add_subparsers(dest="outcomes_action", required=True)
    send = sub.add_parser("send", help="check a CSV of outcomes against the model's contract and send it")
    send.add_argument("model")
    send.add_argument("file", help="CSV: label, and request_id (+ index) or row_id, per row")
    outcomes.add_argument("--json", action="store_true", help="print the API's JSON answers")
    return outcomes


def run(args: argparse.Namespace) -> int:
    return reporting_api_errors(_send, args)


def _send(args: argparse.Namespace) -> int:
    from chalicelib.monitoring.outcomes import OutcomeParser
    from chalicelib.validation import Contract

    contract = Contract.parse(models.call("GET", f"/datasets/{args.model}/contract"))
    found = OutcomeParser(args.model, contract).parse_csv(
        Path(args.file).read_bytes(), datetime.now(UTC), f"cli:{args.file}"
    )
    problems = found.fatal or found.problems
    if problems:
        print(f"error: {args.file}: nothing sent, {len(found.bad_rows) or 1} row(s) to fix:", file=sys.stderr)
        for problem in problems:
            where = f"row {problem.item}" if problem.item is not None else "file"
            print(
                f"  {where}{' ' + problem.field if problem.field else ''}: {problem.problem}", file=sys.stderr
            )
        return 1
    items = [_item(o.request_id, o.index, o.row_id, o.label) for o in found.outcomes]
    answers = [
        models.call("POST", f"/models/{args.model}/outcomes", {"outcomes": items[start : start + CHUNK]})
        for start in range(0, len(items), CHUNK)
    ]
    if args.json:
        return _dump(answers)
    print(
        f"{args.model}: {sum(a['accepted'] for a in answers)} outcome(s) accepted in {len(answers)} request(s)"
    )
    for answer in answers:
        print(f"  {answer['key']}")
    return 0


def _item(request_id: str | None, index: int, row_id: str | None, label: Any) -> dict[str, Any]:
    if request_id is not None:
        return {"request_id": request_id, "index": index, "label": label}
    return {"row_id": row_id, "label": label}
