"""``mlops``: run the local cloud and the demo, and look at what is deployed.

mlops up        start the local cloud (moto + data plane + API + event runtime)
mlops demo      run the end-to-end scenario on a fresh local cloud; exit 0 only if it all worked
mlops status    what needs a look, recent uploads, runs, models, queues (--resources: the stack too)
mlops env       shell exports that point the AWS CLI and SDKs at the running local cloud
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops", description="serverless-mlops command line")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the local cloud on 127.0.0.1 and keep it running")
    up.add_argument("--port", type=int, default=int(os.environ.get("MLOPS_LOCAL_PORT", 4566)))
    up.add_argument("--api-port", type=int, default=int(os.environ.get("MLOPS_API_PORT", 8000)))
    up.add_argument(
        "--fresh", action="store_true", help="start empty: delete the state saved by earlier runs first"
    )

    demo = sub.add_parser("demo", help="run the end-to-end scenario on a fresh local cloud")
    demo.add_argument("--verbose", action="store_true", help="also print the functions' JSON logs")

    status = sub.add_parser(
        "status", help="what needs a look (DLQs, alarms), recent uploads, runs, models, queues"
    )
    status.add_argument("--resources", action="store_true", help="also list the stack's resources")

    contract = sub.add_parser("contract", help="store or show a dataset's data contract (local cloud)")
    contract_sub = contract.add_subparsers(dest="action", required=True)
    put = contract_sub.add_parser("put", help="check a contract file and store it")
    put.add_argument("file", help="the contract, JSON (see docs/contracts.md)")
    get = contract_sub.add_parser("get", help="print a dataset's contract")
    get.add_argument("dataset")

    runs = sub.add_parser("runs", help="training runs of the running local cloud (or one run, in full)")
    runs.add_argument("run_id", nargs="?", help="show this run in full (JSON)")
    runs.add_argument("--dataset", help="only this dataset's runs")

    validate = sub.add_parser(
        "validate",
        help="validate a CSV against a contract offline; prints the JSON report (exit 0 valid, 1 invalid)",
    )
    validate.add_argument("--contract", required=True, help="the contract file (JSON)")
    validate.add_argument("--reference", help="a drift reference profile (JSON) to compare against")
    validate.add_argument("file", help="the CSV file (plain or gzip)")
    sub.add_parser("env", help="print shell exports for the running local cloud (eval them)")
    iam_report = sub.add_parser(
        "iam-report", help="which policy statements the local cloud's recorded calls needed (mutation test)"
    )
    iam_report.add_argument("directory", nargs="?", help="where a run recorded its calls (default build/iam)")
    verify = sub.add_parser("audit-verify", help="compare a model's audit ledger with its create-only copies")
    verify.add_argument("model")
    verify.add_argument("--repair", action="store_true", help="write the copies of entries that have none")
    from mlops import batch, models, monitor, outcomes, tokens, uploads

    models.add_parser(sub)
    uploads.add_parser(sub)
    models.add_predict_parser(sub)
    tokens.add_parser(sub)
    batch.add_parser(sub)
    monitor.add_parser(sub)
    outcomes.add_parser(sub)

    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return cmd_up(args.port, args.api_port, args.fresh)
        if args.command == "demo":
            from mlops.demo import run_demo

            return run_demo(verbose=args.verbose)
        if args.command == "status":
            return cmd_status(args.resources)
        if args.command == "env":
            return cmd_env()
        if args.command == "audit-verify":
            from mlops import auditverify

            return auditverify.main([args.model, *(["--repair"] if args.repair else [])])
        if args.command == "iam-report":
            from mlops import iamreport

            return iamreport.main([args.directory] if args.directory else [])
        if args.command == "contract":
            return cmd_contract(args.action, getattr(args, "file", None), getattr(args, "dataset", None))
        if args.command == "runs":
            return cmd_runs(args.run_id, args.dataset)
        if args.command == "validate":
            return cmd_validate(args.contract, args.file, args.reference)
        if args.command == "models":
            return models.run(args)
        if args.command == "predict":
            return models.run_predict(args)
        if args.command == "uploads":
            return uploads.run(args)
        if args.command == "tokens":
            return tokens.run(args)
        if args.command == "batch":
            return batch.run(args)
        if args.command == "monitor":
            return monitor.run(args)
        if args.command == "outcomes":
            return outcomes.run(args)
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


def _state_line(cloud: Any, state_dir: Path) -> str:
    if cloud.resumed:
        requeued, interrupted = getattr(cloud, "requeued", 0), getattr(cloud, "interrupted", 0)
        again = f"; {requeued} message(s) received before it stopped are visible again" if requeued else ""
        if interrupted:
            again += f"; {interrupted} interrupted invocation(s) will run again"
        return f"resumed from {state_dir} (`mlops up --fresh` starts empty){again}"
    return f"new, saved in {state_dir} as it changes (kept across restarts; --fresh starts empty)"


def cmd_up(port: int, api_port: int, fresh: bool = False) -> int:
    from mlops import localstate
    from mlops.localcloud import LocalCloud, PortInUse, client_environment

    state_dir = localstate.default_dir()
    cloud = LocalCloud(port=port, api_port=api_port, write_state=True, state_dir=state_dir, fresh=fresh)
    try:
        cloud.start()
    except (PortInUse, localstate.StateUnreadable) as exc:
        print(f"mlops up: {exc}", file=sys.stderr)
        return 1
    data_bucket = os.environ["DATA_BUCKET"]
    exports = " ".join(f"{k}={v}" for k, v in client_environment(port).items() if k != "AWS_ENDPOINT_URL")
    print(
        f"""
serverless-mlops local cloud (stage {cloud.stage}) is up.
  AWS endpoint   {cloud.endpoint}   (moto; region us-east-1, any credentials)
  HTTP API       {cloud.api_url}     (try: curl {cloud.api_url}/health)
  data bucket    {data_bucket}
  models bucket  {os.environ["MODELS_BUCKET"]}
  state          {_state_line(cloud, state_dir)}
  handlers       {", ".join(s.handler_name + " <- " + s.queue_name for s in cloud.runtime.subscriptions) if cloud.runtime else "-"}
  schedules      {", ".join(f"{s.handler_name} every {s.interval_s:g}s" for s in cloud.runtime.schedules) if cloud.runtime else "-"}

Upload from another shell:
  {exports} \\
  .venv/bin/aws --endpoint-url {cloud.endpoint} s3 cp my.csv s3://{data_bucket}/incoming/<dataset>/my.csv
or `eval "$(.venv/bin/mlops env)"` first, then use .venv/bin/aws (every service) or boto3 as usual.
`mlops status` shows what needs a look, the latest uploads, runs and models.
Changing API routes need a token:
  export MLOPS_TOKEN=$(.venv/bin/mlops tokens create me --role admin)
  .venv/bin/mlops models list        (or curl -H "Authorization: Bearer $MLOPS_TOKEN" ...)
  .venv/bin/mlops models history MODEL [--at 2026-11-30T12:00:00Z]    (what served when, and why)
Ctrl-C stops.
""",
        flush=True,
    )
    if cloud.runtime:
        cloud.runtime.add_listener(_print_invocation)
    stop = threading.Event()
    # Installed explicitly: a process started in the background of a script inherits SIGINT as
    # ignored, and Python then never raises KeyboardInterrupt; Ctrl-C and SIGTERM must both stop.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    print("\nstopping the local cloud...", flush=True)
    cloud.stop(promptly=True)
    print("stopped.", flush=True)
    # Everything is stopped and saved, the ports closed and the state file removed. What remains
    # is the interpreter's teardown: garbage-collecting moto's state and the ML libraries takes
    # 5-10 s on a busy machine and does nothing anyone needs, so skip it (exit code 0: a requested
    # stop is a clean one).
    import logging

    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)


def _print_invocation(invocation: Any) -> None:
    outcome = (
        "ok" if invocation.ok else (invocation.error or f"{len(invocation.failed_ids)} record(s) failed")
    )
    print(
        f"[runtime] {invocation.handler_name}: {len(invocation.message_ids)} message(s) "
        f"in {invocation.duration_s * 1000:.0f} ms -> {outcome}",
        flush=True,
    )


def cmd_env() -> int:
    """Exports for a shell: the endpoint, region and fake credentials, and an AWS CLI config whose
    plugin makes the CLI use the endpoint for every service (mlops/awscli_local.py: the CLI v1 sends
    `aws sqs` to queue.amazonaws.com otherwise)."""
    import shlex

    from mlops.localcloud import cli_config_file, client_environment, running_endpoint

    port = int(running_endpoint().rsplit(":", 1)[1])
    exports = {**client_environment(port), "AWS_CONFIG_FILE": str(cli_config_file())}
    for key, value in exports.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_contract(action: str, path: str | None, dataset: str | None) -> int:
    from chalicelib import bootstrap
    from chalicelib.validation import Contract, ContractError, NoContract
    from chalicelib.validation.service import store_contract
    from mlops.localcloud import connect

    if action == "put":
        assert path is not None
        try:
            contract = Contract.from_json(Path(path).read_bytes())
        except OSError as exc:
            print(f"mlops contract put: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return 2
        except ContractError as exc:
            print(f"mlops contract put: {path} is not a valid contract: {exc}", file=sys.stderr)
            return 2
        connect()
        bootstrap.contract_sections()
        try:
            key = store_contract(bootstrap.contracts(), contract)
        except ContractError as exc:
            print(f"mlops contract put: {path} is not a valid contract: {exc}", file=sys.stderr)
            return 2
        print(f"stored the contract of {contract.dataset!r} (version {contract.version}) at {key}")
        return 0
    assert dataset is not None
    connect()
    try:
        print(bootstrap.contracts().get(dataset).to_json(), end="")
    except NoContract as exc:
        print(f"mlops contract get: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_runs(run_id: str | None, dataset: str | None) -> int:
    import json

    from chalicelib import bootstrap
    from mlops.localcloud import connect

    connect()
    store = bootstrap.runs_store()
    if run_id:
        run = store.get_run(run_id)
        if run is None:
            print(f"mlops runs: no run {run_id!r}", file=sys.stderr)
            return 1
        print(json.dumps(run, indent=2, default=str))
        return 0
    runs = store.list_runs(dataset)
    print(f"{'run':<44}{'status':<11}{'trigger':<13}{'metric':<20}{'parity':>9}  reasons / error")
    for run in runs:
        metric = (
            f"{run.get('primary_metric', '')} {run['primary_value']:.4f}"
            if run.get("primary_value") is not None
            else "-"
        )
        parity = f"{run['parity_max_abs_diff']:.1e}" if run.get("parity_max_abs_diff") is not None else "-"
        why = run.get("error") or "; ".join(run.get("reasons", []))
        print(
            f"{run['run_id']:<44}{run['status']:<11}{run.get('trigger', {}).get('kind', ''):<13}{metric:<20}{parity:>9}  {why[:60]}"
        )
    if not runs:
        print("(no runs yet)")
    return 0


def cmd_validate(contract_path: str, path: str, reference_path: str | None) -> int:
    """The same validation the pipeline runs, on a local file. Exit 0 valid, 1 invalid, 2 usage.

    Whatever the file holds, the answer is a report (exit 0 or 1); a contract or reference that
    cannot be used is a usage error naming the file (exit 2)."""
    import json

    from chalicelib.validation import Contract, ContractError, validate_stream

    try:
        contract = Contract.from_json(Path(contract_path).read_bytes())
        reference = json.loads(Path(reference_path).read_bytes()) if reference_path else None
        stream = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        print(f"mlops validate: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except ContractError as exc:
        print(f"mlops validate: {contract_path} is not a valid contract: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (ValueError, RecursionError) as exc:  # JSON, UTF-8 or nesting
        print(f"mlops validate: {reference_path} is not JSON: {_one_line(exc)}", file=sys.stderr)
        return 2
    if reference is not None and (problem := _reference_problem(reference, contract)) is not None:
        stream.close()
        print(f"mlops validate: {reference_path} is not a drift profile: {problem}", file=sys.stderr)
        return 2
    from chalicelib.validation import privacy

    with stream:
        result = validate_stream(
            stream,
            contract,
            size=os.fstat(stream.fileno()).st_size,
            reference=privacy.mask_profile(reference, contract),
        )
    print(json.dumps(privacy.mask_report(result.report, contract), indent=2))
    return 0 if result.status == "valid" else 1


def _reference_problem(reference: Any, contract: Any) -> str | None:
    """Why a reference file cannot be compared with (None when it can): it must be a profile as
    validation writes it, which the drift statistics can read (tried on the profile itself)."""
    from chalicelib.validation import drift

    if not isinstance(reference, dict) or not isinstance(reference.get("columns"), dict):
        return 'expected a JSON object with a "columns" object, as profiles/<dataset>/reference.json'
    bad = [name for name, column in reference["columns"].items() if not isinstance(column, dict)]
    if bad:
        return f"column {bad[0]!r} is not an object"
    try:
        drift.compare(reference, reference, contract.drift)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError) as exc:
        return _one_line(exc)
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def cmd_status(resources: bool = False) -> int:
    from mlops.status import print_status

    return print_status(resources=resources)


if __name__ == "__main__":
    sys.exit(main())
