"""The local cloud: a moto server, the data-plane stack, the Chalice API and the event runtime.

Everything runs in this process on 127.0.0.1: moto answers the AWS APIs, the same CloudFormation
template as in AWS is deployed into it, the Chalice app serves HTTP as API Gateway would, and the
event runtime feeds queue messages to the app's SQS handlers with Lambda's semantics.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import io
import json
import os
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops import CHALICE_CONFIG, PROJECT_DIR
from mlops.cfn import deploy_stage
from mlops.logshipper import CaptureTee
from mlops.runtime import EventRuntime, schedules_from_app, subscriptions_from_app

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
DEFAULT_PORT = 4566
DEFAULT_API_PORT = 8000
STATE_DIR = PROJECT_DIR / ".mlops"
STATE_FILE = STATE_DIR / "local.json"

# moto needs credentials to sign with; they are not checked.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


# The roles of the data-plane template that the jobs run as, by principal name.
JOB_ROLES = {"training_job": "TrainingJobRole", "batch_scoring_job": "BatchScoringJobRole"}
API_FUNCTION = "api_handler"


class PortInUse(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stage_config(stage: str) -> dict[str, Any]:
    config = json.loads(CHALICE_CONFIG.read_text())
    try:
        return dict(config["stages"][stage])
    except KeyError:
        raise SystemExit(f"stage {stage!r} is not in {CHALICE_CONFIG}") from None


def client_environment(port: int) -> dict[str, str]:
    """What a process needs to talk to the local cloud: endpoint, region, fake credentials."""
    return {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", **FAKE_CREDENTIALS}


@dataclass
class LocalCloud:
    port: int = DEFAULT_PORT
    api_port: int | None = DEFAULT_API_PORT  # None: no HTTP API
    stage: str = "local"
    events: bool = True
    function_log: Path | None = None  # send the functions' JSON logs here instead of stdout
    write_state: bool = False
    # Keep moto's state in this directory (mlops.localstate): loaded at start if there, saved as it
    # changes. None: in memory only (the tests, the demo). ``fresh``: delete what is there first.
    state_dir: Path | None = None
    fresh: bool = False
    # Every function, job and worker calls AWS as its own role, checked against the policy that
    # deploys (mlops/localiam.py). MLOPS_LOCAL_IAM=off turns it off, e.g. to tell a refusal from a bug.
    enforce_iam: bool = field(default_factory=lambda: os.environ.get("MLOPS_LOCAL_IAM", "on") != "off")
    iam: Any = field(init=False, default=None)  # the LocalIam: principals and every call they made
    app: Any = field(init=False, default=None)
    runtime: EventRuntime | None = field(init=False, default=None)
    resources: dict[str, str] = field(init=False, default_factory=dict)
    resumed: bool = field(init=False, default=False)  # the state was loaded from ``state_dir``
    committer: Any = field(init=False, default=None)  # mlops.localstate.Committer, when persisting

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str | None:
        return f"http://127.0.0.1:{self.api_port}" if self.api_port else None

    def start(self) -> LocalCloud:
        for port, what in ((self.port, "MLOPS_LOCAL_PORT"), (self.api_port, "MLOPS_API_PORT")):
            if port and not port_is_free(port):
                raise PortInUse(
                    f"127.0.0.1:{port} is in use (is `mlops up` already running?). "
                    f"Stop it, or choose another port with {what}=<port>."
                )
        config = stage_config(self.stage)
        os.environ.update(client_environment(self.port))
        os.environ.update(config.get("environment_variables", {}))
        os.environ.setdefault("POWERTOOLS_DEV", "false")

        import logging

        from moto.server import ThreadedMotoServer

        # moto's werkzeug server logs every AWS call, and moto warns about the one template resource
        # it skips (the SQS queue policy); the useful story is the functions' logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        logging.getLogger("moto").setLevel(logging.ERROR)

        # moto's backends are module globals that its server serves whatever port it listens on: a
        # cloud started earlier in this process (the tests start one per module) would lend this one
        # its buckets, tables and queues. Each cloud starts empty, or with its state directory's.
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()
        serialise_dynamodb()
        s3_events_carry_version_ids()
        list_moto_services_once()
        self._moto = (
            self._moto_server()
            if self.state_dir
            else ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        )
        self._moto.start()
        # Jobs are submitted to moto's Batch (which then runs nothing: no Docker) and run as child
        # processes: the submission is checked (names, permissions) as on AWS.
        _moto_config(self.endpoint, {"batch": {"use_docker": False}})
        os.environ["MLOPS_LOCAL_SUBMIT"] = "batch"

        import boto3

        from chalicelib import bootstrap

        bootstrap.reset()  # the adapters wired so far point elsewhere
        session = boto3.session.Session()
        env = config["environment_variables"]
        # moto prints and warns about the one resource it skips (the SQS queue policy).
        with contextlib.redirect_stdout(io.StringIO()):
            from chalicelib.settings import Settings

            self.resources = deploy_stage(Settings.for_stage(self.stage, env["MLOPS_PREFIX"]), session)
        self._subscribe_capture(session, Settings.for_stage(self.stage, env["MLOPS_PREFIX"]), config)
        if self.resumed:
            self.interrupted = end_interrupted_invocations(session, env["IDEMPOTENCY_TABLE"])
        if self.enforce_iam:
            self._enforce_iam(session, Settings.for_stage(self.stage, env["MLOPS_PREFIX"]))
            session = boto3.session.Session()  # its clients are checked as the principal calling
        self.app = self._load_app(config)
        import_everything("chalicelib")
        self._act_as_functions(self.app)
        if self.function_log:
            self._redirect_function_logs(self.function_log)
        self._ship_function_logs(session)
        if self.api_port:
            self._start_api()
        if self.events:
            self.runtime = EventRuntime(
                subscriptions_from_app(self.app, self.stage, config),
                session.client("sqs"),
                REGION,
                ACCOUNT,
                schedules=schedules_from_app(self.app, self.stage, config),
                identity=self._identity(),
            )
            self.runtime.start()
        if self.write_state:
            STATE_DIR.mkdir(exist_ok=True)
            STATE_FILE.write_text(
                json.dumps(
                    {
                        "endpoint": self.endpoint,
                        "api_url": self.api_url,
                        "stage": self.stage,
                        "pid": os.getpid(),
                    }
                )
            )
        return self

    def _moto_server(self) -> Any:
        """moto's server in front of the state on disk (mlops.localstate): loaded now if saved
        before, and every answer to a change held until the change is saved."""
        from mlops import localstate

        assert self.state_dir is not None
        # moto's EC2 loads some 1,300 public AMIs (with their volumes and snapshots) into every
        # backend: nothing here uses them, and they were half of every snapshot.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        store = localstate.StateStore(self.state_dir)
        if self.fresh:
            store.wipe()
        store.remove_temporaries()
        if store.exists():
            saved = store.load()
            localstate.restore_backends(saved)
            self.requeued = localstate.requeue_in_flight(saved)
            store.collect_garbage(store.loaded_digests)
            self.resumed = True
        self.committer = localstate.Committer(store).start()
        return localstate.DurableMotoServer(self.committer, self._internal_keys, "127.0.0.1", self.port)

    def _internal_keys(self) -> set[str]:
        """The access keys of the local cloud's own functions and jobs (their writes are not held:
        see mlops.localstate)."""
        if self.iam is None:
            return set()
        return {p.credentials.access_key for p in self.iam.principals.values() if p.credentials}

    def durable(self) -> None:
        """Return once every change made so far is saved (no-op when not persisting): before the
        local API answers."""
        if self.committer is not None:
            self.committer.wait_durable()

    def _enforce_iam(self, session: Any, settings: Any) -> None:
        """A role per function (its deployed policy) and the jobs' roles (as the template made them),
        each assumed; then every call of this process and of its children is checked."""
        from mlops import localiam, policies

        iam = localiam.LocalIam(localiam.stage_account(session, settings, self.resources, REGION, ACCOUNT))
        for function in policies.FUNCTIONS:
            iam.add(
                localiam.function_principal(session, self.stage, settings.prefix, function, ACCOUNT, REGION)
            )
        for principal, logical in JOB_ROLES.items():
            iam.add(localiam.role_principal(session, principal, self.resources[logical]))
        self.iam_dir = STATE_DIR / "iam" / str(self.port)
        shutil.rmtree(self.iam_dir, ignore_errors=True)
        localiam.write_principals(iam, self.iam_dir)
        os.environ[localiam.DIR_ENV] = str(self.iam_dir)
        localiam.install(iam)
        self.iam = iam

    def _subscribe_capture(self, session: Any, settings: Any, config: dict[str, Any]) -> None:
        """The API function's log group and its capture subscription, by the post-deploy step's code."""
        from mlops import policies, postdeploy

        retention = config.get("lambda_functions", {}).get(API_FUNCTION, {}).get("log_retention_in_days")
        postdeploy.subscribe_capture(
            session.client("logs"),
            policies.function_name(settings, API_FUNCTION),
            *postdeploy.capture_destination(session, settings.prefix, settings.stage),
            postdeploy.data_key_arn(session, settings.prefix, settings.stage),
            retention,
        )

    def _ship_function_logs(self, session: Any) -> None:
        """What the functions print reaches their log groups, as Lambda delivers it (mlops.logshipper):
        the capture lines, on to the capture stream and S3."""
        from chalicelib.settings import Settings
        from mlops import policies
        from mlops.logshipper import LogShipper

        settings = Settings.for_stage(self.stage, os.environ.get("MLOPS_PREFIX", "serverless-mlops"))
        self._function_names = {f: policies.function_name(settings, f) for f in policies.FUNCTIONS}
        keep_log_keys_per_function()
        self.log_shipper = LogShipper(session.client("logs")).start()
        _SHIPPING.append(self)
        _tee_stdout()

    @contextlib.contextmanager
    def function_context(self, function: str) -> Iterator[None]:
        """Run the body as Lambda runs the function (its name in .chalice/config.json): as its
        principal (under the local IAM), and what it prints delivered to its log group."""
        _tee_stdout()
        shipper = getattr(self, "log_shipper", None)
        name = getattr(self, "_function_names", {}).get(function, function)
        token = _RUNNING_AS.set((shipper, name) if shipper is not None else None)
        named = _FUNCTION.set(name)
        try:
            if self.iam is None:
                yield
            else:
                from mlops import localiam

                with localiam.acting_as(function):
                    yield
        finally:
            _FUNCTION.reset(named)
            _RUNNING_AS.reset(token)

    def name_context(self, function: str, context: Any) -> None:
        """Name a Lambda context as Lambda would: Chalice's local gateway calls the API function
        ``api_handler``, with no ARN or log group; its deployed name is ``<app>-<stage>``."""
        name = getattr(self, "_function_names", {}).get(function, function)
        context.function_name = name
        context.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        context.log_group_name = f"/aws/lambda/{name}"

    def flush_logs(self, timeout_s: float = 30.0) -> bool:
        """Wait until every line the functions printed so far is in its log group (hence, for
        capture lines, delivered to S3 by moto's Firehose)."""
        shipper = getattr(self, "log_shipper", None)
        return shipper.flush(timeout_s) if shipper is not None else True

    def _identity(self) -> Callable[[str], Any]:
        return self.function_context

    def _act_as_functions(self, app: Any) -> None:
        """HTTP routes run as the API function (``_start_api``), the token authorizer as itself: its
        principal, its log lines named after it and shipped to its log group. Like the app's class,
        the authorizer outlives a cloud in a process that starts several: it runs in the context of
        the cloud serving now."""
        app._mlops_cloud = self
        for methods in app.routes.values():
            for entry in methods.values():
                authorizer = entry.authorizer
                if (
                    authorizer is not None
                    and hasattr(authorizer, "func")
                    and not getattr(authorizer.func, "_mlops_iam", False)
                ):
                    authorizer.func = _as_function(app, authorizer.name, authorizer.func)
                    authorizer.func._mlops_iam = True

    def iam_calls(self) -> list[dict[str, Any]]:
        """Every call the functions (this process) and the jobs and workers (children) made."""
        from mlops import localiam

        if self.iam is None:
            return []
        return [*self.iam.export(), *localiam.child_calls(self.iam_dir)]

    def _load_app(self, config: dict[str, Any]) -> Any:
        from chalice.cli.factory import CLIFactory

        self._factory = CLIFactory(str(PROJECT_DIR))
        self._chalice_config = self._factory.create_config_obj(chalice_stage_name=self.stage)
        return self._factory.load_chalice_app(config.get("environment_variables", {}))

    def _redirect_function_logs(self, path: Path) -> None:
        """Send what the functions write (JSON logs, EMF metrics) to a file, as Lambda sends it to
        CloudWatch, and keep the terminal for the caller's own output."""
        from chalicelib.observability import logger

        path.parent.mkdir(parents=True, exist_ok=True)
        self._log_stream = path.open("a", encoding="utf-8", buffering=1)
        logger.registered_handler.setStream(self._log_stream)  # type: ignore[attr-defined]
        self._saved_stdout = sys.stdout
        sys.stdout = _ThreadRoutedStream(sys.stdout, self._log_stream)

    def _start_api(self) -> None:
        from chalice.local import ChaliceRequestHandler, LocalChalice, LocalDevServer

        from mlops.localapi import api_server_class, install_gateway_auth_semantics

        install_gateway_auth_semantics()  # an authorizer's "Unauthorized" is a 401, as in API Gateway
        if not isinstance(self.app, LocalChalice):
            # The server runs requests on threads, and Chalice keeps the request on the app object: one
            # request's body and caller would be read by another (an approval recorded under someone
            # else's name). `chalice local` swaps in LocalChalice, whose request is per thread; so here.
            self.app.__class__ = type("ThreadLocalChalice", (LocalChalice, self.app.__class__), {})
        # The app module (and so its class, patched once) outlives a local cloud in a process that
        # starts several (the tests): each request runs in the context of the cloud serving it now,
        # never of the first (whose log shipper has stopped: its lines would be lost).
        self.app._mlops_cloud = self
        if not getattr(self.app.__class__, "_mlops_api", False):
            base = self.app.__class__

            def as_api(app: Any, event: Any, context: Any) -> Any:
                app._mlops_cloud.name_context(API_FUNCTION, context)
                with app._mlops_cloud.function_context(API_FUNCTION):
                    answer = base.__call__(app, event, context)
                app._mlops_cloud.durable()  # what the client is told happened survives a kill
                return answer

            self.app.__class__ = type("ApiFunction", (base,), {"__call__": as_api, "_mlops_api": True})
        assert self.api_port is not None
        quiet = self.function_log is not None

        class RequestHandler(ChaliceRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                if not quiet:
                    super().log_message(format, *args)

        self._api = LocalDevServer(
            self.app,
            self._chalice_config,
            "127.0.0.1",
            self.api_port,
            handler_cls=RequestHandler,
            server_cls=api_server_class(),
        )
        self._api_thread = threading.Thread(
            # Polled every 0.1 s for a shutdown (0.5 s by default): part of Ctrl-C's 5 s.
            target=functools.partial(self._api.server.serve_forever, poll_interval=0.1),
            name="chalice-api",
            daemon=True,
        )
        self._api_thread.start()

    def stop(self, promptly: bool = False) -> None:
        """Stop the API and the event runtime (at once), then the log shipper and moto. ``promptly``
        (Ctrl-C on `mlops up`): wait at most ~2 s for handlers in flight and ~1 s for log lines to
        ship, instead of 5 s and 30 s; what is cut short is what a Lambda crash would cut short."""
        api_stopping = None
        if getattr(self, "_api", None):  # no new request starts work; meanwhile the runtime stops
            api_stopping = threading.Thread(target=self._stop_api, name="chalice-api-stop")
            api_stopping.start()
        if self.runtime:
            self.runtime.stop(timeout_s=2.0 if promptly else 5.0)
        if api_stopping is not None:
            api_stopping.join()
        if getattr(self, "log_shipper", None):
            # What was printed is delivered before moto goes.
            self.log_shipper.stop(timeout_s=1.0 if promptly else 30.0)
            _SHIPPING.remove(self)
            while not _SHIPPING and isinstance(sys.stdout, CaptureTee):
                sys.stdout = sys.stdout.target
        if getattr(self, "_saved_stdout", None):
            sys.stdout = self._saved_stdout
        if getattr(self, "_moto", None):
            self._moto.stop()
        if self.committer is not None:
            self.committer.stop()  # what changed since the last snapshot, saved
        os.environ.pop("MLOPS_LOCAL_SUBMIT", None)
        if self.iam is not None:
            from mlops import localiam

            localiam.uninstall(self.iam)
            os.environ.pop(localiam.DIR_ENV, None)
            shutil.rmtree(self.iam_dir, ignore_errors=True)  # the principals' credentials
        if self.write_state and STATE_FILE.exists():
            STATE_FILE.unlink()

    def _stop_api(self) -> None:
        self._api.shutdown()
        self._api.server.server_close()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def end_interrupted_invocations(session: Any, table: str) -> int:
    """Delete the idempotency records (Powertools) of invocations still in progress when the state
    was saved: the process running them is gone. In Lambda such a record blocks redeliveries until
    the function's timeout passes, by when SQS's visibility timeout (longer) has too; here the
    messages are visible again at once, and would meet the record until they went to the DLQ. The
    function then runs again for them; its effects are idempotent (the create-only ledger).
    Returns how many."""
    dynamodb = session.client("dynamodb")
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="#s = :in_progress",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":in_progress": {"S": "INPROGRESS"}},
        ConsistentRead=True,
    )
    ended = 0
    for page in pages:
        for item in page["Items"]:
            dynamodb.delete_item(TableName=table, Key={"id": item["id"]})
            ended += 1
    return ended


def import_everything(package: str) -> None:
    """Import every module of ``package`` now, on this thread. The handlers import what they use on
    first call (a Lambda function pays only for its own imports), but here the functions share one
    process and run on several threads: two of them importing the same package at once can meet
    an import cycle from both ends, and Python then hands one a partly initialised module
    (ImportError). In Lambda each function is a process of its own, so this cannot happen there."""
    import importlib
    import pkgutil

    root = importlib.import_module(package)
    for module in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        importlib.import_module(module.name)


def _moto_config(endpoint: str, config: dict[str, Any]) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"{endpoint}/moto-api/config",
        data=json.dumps(config).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


_WRITES = ("update_item", "put_item", "delete_item", "transact_write_items", "batch_write_item")


def serialise_dynamodb(setattr: Callable[[Any, str, Any], None] = setattr) -> None:
    """Give moto's DynamoDB the atomicity and isolation of the real service.

    DynamoDB applies each write (an ``ADD`` counter, a conditional put, a transaction) atomically and
    never shows a read a half-written item or what a transaction has not committed. moto's threaded
    server runs concurrent requests at once: its read-modify-write of an item can lose an update (two
    workers adding 1 to a counter at the same moment may add 1 in all; batch jobs count their shards
    this way); it writes an item in place in steps (an update of a new item stores the bare key
    first: a reader once found a champion pointer without its version); and a transaction that fails
    is applied item by item, then undone from a copy of the tables. Serialising every DynamoDB request
    (``DynamoHandler.call_action``, the answer's serialisation included) and every backend write
    restores what the service guarantees. Idempotent; this process's moto only. ``setattr`` lets a
    test install it undoably (pytest's ``monkeypatch.setattr``)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoDBBackend.update_item, "_mlops_serialised", False):
        return
    lock = threading.RLock()
    targets = [(DynamoHandler, "call_action"), *((DynamoDBBackend, name) for name in _WRITES)]
    for owner, name in targets:
        original = getattr(owner, name)

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        locked._mlops_serialised = True  # type: ignore[attr-defined]
        setattr(owner, name, locked)


def s3_events_carry_version_ids(setattr: Callable[[Any, str, Any], None] = setattr) -> None:
    """Give moto's S3 event notifications the ``versionId`` of the object, as S3 sends it for a
    bucket with versioning enabled (and leaves out otherwise). moto 5.2.5 builds the record without
    it, so a handler could not tell which version of an overwritten key it was told about; the
    ingest reads the version named in the event (and only falls back to what a read returns when
    an event has none). Idempotent; this process's moto only; ``setattr`` as in serialise_dynamodb."""
    from moto.s3 import notifications

    original = notifications._get_s3_event
    if getattr(original, "_mlops_version_ids", False):
        return

    def with_version_id(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original(event_name, bucket, key, notification_id)
        version_id = getattr(key, "version_id", None)
        if getattr(bucket, "is_versioned", False) and version_id and version_id != "null":
            for record in event["Records"]:
                record["s3"]["object"]["versionId"] = version_id
        return event

    with_version_id._mlops_version_ids = True  # type: ignore[attr-defined]
    setattr(notifications, "_get_s3_event", with_version_id)


def list_moto_services_once(setattr: Callable[[Any, str, Any], None] = setattr) -> None:
    """moto's server finds the service of every request by listing its own package directory and
    testing each entry for being a directory (~150 ``stat`` calls a request: a few milliseconds, of
    an upload's twenty-odd requests). The list cannot change while the process runs: list it once."""
    from moto import backends

    if getattr(backends.list_of_moto_modules, "_mlops_once", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def listed_once() -> tuple[str, ...]:
        return modules

    listed_once._mlops_once = True  # type: ignore[attr-defined]
    setattr(backends, "list_of_moto_modules", listed_once)


# The function running on this thread (LocalCloud.function_context): its cloud's log shipper and its
# deployed name. One tee serves every local cloud of the process; each line goes to its own cloud.
_RUNNING_AS: contextvars.ContextVar[tuple[Any, str] | None] = contextvars.ContextVar(
    "mlops_function", default=None
)
_SHIPPING: list[LocalCloud] = []  # the clouds whose shippers run
_TEE_LOCK = threading.Lock()
# The deployed name of the function running in this context (None: the operator, a test).
_FUNCTION: contextvars.ContextVar[str | None] = contextvars.ContextVar("mlops_function_name", default=None)


def _as_function(app: Any, function: str, func: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        with app._mlops_cloud.function_context(function):
            return func(*args, **kwargs)

    return run


def keep_log_keys_per_function() -> None:
    """Give each function its own Powertools log keys, as its own process has in Lambda.

    The keys a handler appends (``function_name``, ``function_arn``, the request and correlation
    ids: ``inject_lambda_context``, the API's middleware) live in the logger's formatter, one dict
    per process. In Lambda a process runs one function; here every function shares the process, so a
    handler's lines carried whichever function had appended keys last (the ingest function's lines
    named the retraining kickoff, the authorizer's a batch planner). Here the formatter's keys are
    kept per function (``_FUNCTION``, set by ``LocalCloud.function_context``), each function's
    starting from the process's keys and its deployed name; code outside any function uses the
    process's. Idempotent."""
    from chalicelib.observability import logger

    formatter = logger.registered_formatter
    base = type(formatter)
    if getattr(base, "_mlops_keys_per_function", False):
        return
    shared: dict[str, Any] = formatter.__dict__.pop("log_format")
    by_function: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def get(self: Any) -> dict[str, Any]:
        function = _FUNCTION.get()
        if function is None:
            return shared
        with lock:
            if function not in by_function:
                by_function[function] = {**shared, "function_name": function}
            return by_function[function]

    def put(self: Any, keys: dict[str, Any]) -> None:
        nonlocal shared
        function = _FUNCTION.get()
        if function is None:
            shared = keys
        else:
            with lock:
                by_function[function] = keys

    formatter.__class__ = type(
        "PerFunctionLogKeys", (base,), {"log_format": property(get, put), "_mlops_keys_per_function": True}
    )


def _tee_stdout() -> None:
    """The tee in stdout's place, again if something took it (pytest puts its capture there for each
    test, and puts back what it found after): a function's lines reach its log group whoever reads
    stdout. A new tee wraps the current stdout; the one pytest saved is left as it is. Under a lock:
    invocations start on several threads at once, and a tee wrapping a tee would ship lines twice."""
    with _TEE_LOCK:
        if not isinstance(sys.stdout, CaptureTee):
            sys.stdout = CaptureTee(sys.stdout, _RUNNING_AS.get)


class _ThreadRoutedStream(io.TextIOBase):
    """stdout for the main thread, a file for every other (handlers run on poller and API threads)."""

    def __init__(self, main: Any, other: Any) -> None:
        self._main, self._other = main, other

    def write(self, text: str) -> int:
        target = self._main if threading.current_thread() is threading.main_thread() else self._other
        return int(target.write(text))

    def flush(self) -> None:
        self._main.flush()
        self._other.flush()


def running_endpoint() -> str:
    """The endpoint of the local cloud: the port MLOPS_LOCAL_PORT names if it is set (as for the
    `mlops up` it started), else the running `mlops up`'s (state file), else the default port."""
    if os.environ.get("MLOPS_LOCAL_PORT"):
        return f"http://127.0.0.1:{int(os.environ['MLOPS_LOCAL_PORT'])}"
    if STATE_FILE.exists():
        return str(json.loads(STATE_FILE.read_text())["endpoint"])
    return f"http://127.0.0.1:{DEFAULT_PORT}"


def cli_config_file() -> Path:
    """The AWS CLI config `mlops env` points AWS_CONFIG_FILE at (written now, the same every time):
    the local region, and the plugin that sends every service to AWS_ENDPOINT_URL."""
    from mlops.awscli_local import local_config

    path = STATE_DIR / "aws-cli.config"
    STATE_DIR.mkdir(exist_ok=True)
    if not path.exists() or path.read_text() != local_config(REGION):
        path.write_text(local_config(REGION))
    return path


def connect(stage: str = "local") -> str:
    """Point this process's SDK clients (and its wiring) at the running local cloud. Returns its endpoint."""
    from chalicelib import bootstrap

    endpoint = running_endpoint()
    os.environ.update(client_environment(int(endpoint.rsplit(":", 1)[1])))
    os.environ.update(stage_config(stage).get("environment_variables", {}))
    bootstrap.reset()
    return endpoint
