"""``mlops audit-verify MODEL [--repair]``: compare a model's audit ledger with its create-only copies.

Run with the operator's credentials (the running local cloud, or a deployed stage with
``MLOPS_STAGE``). Each committed entry has a copy under ``audit/<model>/`` in the data bucket that
no role of the system can overwrite or delete; an entry that differs from its copy was rewritten,
one missing from the ledger was deleted. ``--repair`` writes the copies of entries that have none
(the writer stopped between the commit and the copy). Exits 1 if anything was rewritten or deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from chalicelib import bootstrap
from chalicelib.adapters.aws.audit_copies import S3AuditCopies, compare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops audit-verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--repair", action="store_true", help="write the copies of entries that have none")
    args = parser.parse_args(argv)
    if not os.environ.get("MLOPS_STAGE") or os.environ.get("MLOPS_STAGE") == "local":
        from mlops.localcloud import connect

        connect()
    registry, copies = bootstrap.registry(), S3AuditCopies(bootstrap.settings().data_bucket)
    ledger = registry.audit(args.model)
    findings = compare(ledger, copies.all(args.model))
    tampered = [f for f in findings if f["finding"] != "no copy"]
    for finding in findings:
        if finding["finding"] == "no copy" and args.repair:
            entry = next(e for e in ledger if int(e["seq"]) == finding["seq"])
            copies.keep(args.model, entry)
            finding["finding"] = "no copy: written now"
        print(json.dumps(finding))
    print(
        f"{args.model}: {len(ledger)} entries, {len(findings)} finding(s), {len(tampered)} rewritten or deleted"
    )
    return 1 if tampered else 0


if __name__ == "__main__":
    sys.exit(main())
