"""``mlops uploads ...``: one upload, the model versions it reached, and revoking it, through the HTTP
API (the running local cloud's, or ``MLOPS_API_URL``) with ``MLOPS_TOKEN`` (an admin's, to revoke).

mlops uploads show UPLOAD_ID                    the ledger entry (status, rows, revocation)
mlops uploads models UPLOAD_ID                  every version trained or evaluated on it
mlops uploads revoke UPLOAD_ID --reason "..."   take it out of training for good (docs/registry.md)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mlops.models import _dump, call, print_wrapped, reporting_api_errors


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    uploads = subparsers.add_parser(
        "uploads", help="one upload: show it, the model versions it reached, revoke it"
    )
    sub = uploads.add_subparsers(dest="uploads_action", required=True)
    for action, helptext in (("show", "the upload's ledger entry"),
                             ("models", "every model version trained or evaluated on the upload")):  # fmt: skip
        p = sub.add_parser(action, help=helptext)
        p.add_argument("upload_id")
    revoke = sub.add_parser(
        "revoke",
        help="take a valid upload out of training for good: its versions are tainted, a tainted "
        "champion falls back and retrains (admin)",
    )
    revoke.add_argument("upload_id")
    revoke.add_argument("--reason", required=True, help="why (recorded on the upload and the versions)")
    uploads.add_argument("--json", action="store_true", help="print the API's JSON")
    return uploads


def run(args: argparse.Namespace) -> int:
    return reporting_api_errors(_run, args)


def _run(args: argparse.Namespace) -> int:
    action = args.uploads_action
    if action == "show":
        return _dump(call("GET", f"/uploads/{args.upload_id}"))
    if action == "models":
        doc = call("GET", f"/uploads/{args.upload_id}/models")
        if args.json:
            return _dump(doc)
        print_lineage(doc)
        return 0
    doc = call("POST", f"/uploads/{args.upload_id}/revoke", {"reason": args.reason})
    if args.json:
        return _dump(doc)
    print_revocation(doc)
    return 0


def _versions(numbers: list[int]) -> str:
    return ", ".join(f"v{v}" for v in numbers) or "none"


def print_lineage(doc: dict[str, Any], out: Any = None) -> None:
    """The upload, then each version it reached: status, how (trained, evaluated), and taint."""
    out = out or sys.stdout
    revoked = doc.get("revoked")
    state = f"revoked by {revoked['by']} at {revoked['at']}" if revoked else doc.get("status")
    print(f"upload {doc['upload_id']} ({doc.get('dataset')}): {state}", file=out)
    if revoked:
        print_wrapped(f"reason: {revoked['reason']}", 4, out)
    if not doc["versions"]:
        print("  no model version was trained or evaluated on it", file=out)
    for v in doc["versions"]:
        how = " and ".join(w for w in ("trained", "evaluated") if v[w])
        champion = " (champion)" if v.get("champion") else ""
        print(f"  v{v['version']:<4} {v['status']:<17} {how} on it{champion}", file=out)
        if v.get("tainted"):
            print_wrapped(v["tainted"], 8, out)


def print_revocation(doc: dict[str, Any], out: Any = None) -> None:
    """What a revocation did: the versions tainted and rejected, the champion's fallback, the retrain."""
    out = out or sys.stdout
    print(f"upload {doc['upload_id']} revoked ({doc['dataset']}); nothing was deleted", file=out)
    print(
        f"  tainted: {_versions(doc['tainted'])}; rejected while waiting: {_versions(doc['rejected'])}",
        file=out,
    )
    champion = doc["champion"]
    if not champion.get("tainted"):
        print(
            f"  the champion ({'v' + str(champion['version']) if champion['version'] else 'none'}) is not tainted",
            file=out,
        )
        return
    print(f"  the champion v{champion['version']} is tainted: it answers no prediction", file=out)
    fallback = champion.get("fallback")
    if fallback and fallback.get("to_version"):
        print(f"  fallback: v{fallback['to_version']} serves again (an audited champion change)", file=out)
    elif fallback:
        print_wrapped(f"fallback: {fallback['note']}", 2, out)
    retrain = champion.get("retrain")
    if retrain:
        run = f" (run {retrain['run_id']})" if retrain.get("run_id") else ""
        print_wrapped(
            f"retrain without the upload: {retrain['action']}{run}: {'; '.join(retrain['reasons'])}", 2, out
        )
