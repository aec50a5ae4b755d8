"""``chalice deploy``, but a failure midway still records what was created.

Chalice writes ``.chalice/deployed/<stage>.json`` only when the whole deployment succeeded. A failure
midway (a new account's concurrency quota, a throttled call, a lost connection) leaves functions,
roles and live SQS triggers behind and no record of them, and the next ``chalice deploy`` plans from
nothing: it creates every SQS trigger again (AWS refuses a second mapping of one queue to one
function, moto duplicates it), and ``chalice delete`` finds nothing to delete.

This runs Chalice's own deployer as ``chalice deploy`` does (same configuration, same plan, same
output) and, when it fails, writes the resources the executor had recorded before the failure over
the previous record, so a re-run plans updates instead of creations, and the post-deploy step and
``make destroy`` can reach what exists. The record is marked ``"partial": true`` until a deployment
completes. It uses one private attribute of Chalice's deployer (its executor's recorded values);
chalice is pinned (requirements-dev.txt) and the deploy rehearsal (tests/deploy/test_rehearsal_resume.py)
fails if that changes.

Before Chalice runs, its deployment package is built and pruned of what the functions never load
(``mlops.lambdazip``): Chalice finds it in its cache and uploads that.

``python -m mlops.chalicedeploy --stage dev`` (``mlops deploy`` runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from mlops import PROJECT_DIR


def deployed_path(stage: str, project_dir: Path = PROJECT_DIR) -> Path:
    return project_dir / ".chalice" / "deployed" / f"{stage}.json"


def merge_partial(previous: dict[str, Any] | None, recorded: list[dict[str, Any]]) -> dict[str, Any]:
    """The previous record with the resources recorded so far in its place (by name), marked partial."""
    by_name: dict[str, dict[str, Any]] = {}
    for resource in (previous or {}).get("resources", []):
        by_name[resource["name"]] = resource
    for resource in recorded:
        by_name[resource["name"]] = {**by_name.get(resource["name"], {}), **resource}
    return {
        "resources": list(by_name.values()),
        "schema_version": "2.0",
        "backend": "api",
        "partial": True,
    }


def prepare_package(stage: str, project_dir: Path = PROJECT_DIR) -> Path:
    """The pruned deployment package, where Chalice's deployer looks for it first (its cache).

    Chalice names it by a hash of every file under chalicelib/, bytecode included, and importing
    app.py (which the deployer does before it packages) would write bytecode there: so none is
    written by this process from here on, and what earlier runs left is removed first."""
    from mlops import lambdazip
    from mlops.package import drop_bytecode

    sys.dont_write_bytecode = True
    drop_bytecode(project_dir / "chalicelib")
    return lambdazip.prepare(project_dir, stage)


def deploy(stage: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    from chalice.cli.factory import CLIFactory
    from chalice.utils import UI

    prepare_package(stage, project_dir)

    # As `chalice` does: the stage's environment variables go into os.environ before app.py is
    # imported (its settings read them at import).
    factory = CLIFactory(project_dir=str(project_dir), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    session = factory.create_botocore_session()
    ui = UI()
    deployer = factory.create_default_deployer(session=session, config=config, ui=ui)
    path = deployed_path(stage, project_dir)
    previous = json.loads(path.read_text()) if path.exists() else None
    try:
        values: dict[str, Any] = deployer.deploy(config, chalice_stage_name=stage)
    except BaseException:
        recorded = list(deployer._executor.resource_values)  # private: see the module doc
        if recorded or previous:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(merge_partial(previous, recorded), indent=2) + "\n")
            print(
                f"chalice deploy failed: {len(recorded)} resource(s) recorded in {path} (partial)",
                file=sys.stderr,
            )
        raise
    factory.create_deployment_reporter(ui=ui).display_report(values)
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops chalicedeploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR)
    args = parser.parse_args(argv)
    try:
        deploy(args.stage, args.project_dir)
    except Exception as exc:  # chalice deploy prints the error the same way and exits 2
        print(f"ERROR - {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
