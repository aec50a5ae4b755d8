"""The local cloud's state on disk: what moto holds survives `mlops up` restarts, and a kill loses
nothing a client was told had succeeded.

The state is moto's loaded backends (every bucket, object version, table, item, queue, message,
stack, role, key, log group...), pickled whole as one snapshot, plus each S3 object body written
once to a content-addressed file (``blobs/<sha256>``): a snapshot holds the bodies' digests, not
the bodies, so its cost grows with the metadata, not with the data uploaded.

A snapshot is written to a temporary file, fsynced, renamed over the previous one and the
directory fsynced: a kill at any moment leaves either the previous snapshot or the new one, never
a torn one. ``DurableApp`` sits in front of moto's WSGI app and makes the guarantee:

- each request is a *write* (may change state), a *read* (does not), or a *transient* change
  (SQS ``ReceiveMessage``: only a message's visibility and receive count);
- a snapshot is taken under an exclusive lock that waits for the writes in progress and holds
  new ones back while moto's objects are pickled (reads go on: pickling changes nothing);
- a write from a client outside the local cloud gets its answer only once a snapshot taken after
  it finished is durable (group commit: one snapshot covers every write that finished before it);
- a write of the local cloud's own functions and jobs (signed with their principals' keys) is not
  held back: a snapshot is a consistent cut, so one that holds a later write holds every earlier
  one, and what those writes lead to reaches a client only through a later write of its own or
  through the local API, which waits for a snapshot before it answers (``barrier``).

Transient changes are not kept: after a restart every message is visible again (at least once, as
SQS redelivers after a visibility timeout) and its receive count is the one last saved.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import importlib
import io
import os
import pickle
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

STATE_ENV = "MLOPS_LOCAL_STATE"  # where the state lives (tests point it at a temporary directory)
SNAPSHOT = "moto.pickle"
BLOBS = "blobs"
FORMAT = 1  # bump when the snapshot's layout changes: an older one is then refused, not misread

# Actions (the name after the JSON target's dot, or a query protocol's Action=) that change nothing.
_READ_PREFIXES = (
    "Get",
    "List",
    "Describe",
    "Query",
    "Scan",
    "BatchGet",
    "TransactGet",
    "Head",
    "Lookup",
    "Filter",
    "Search",
    "Select",
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "Verify",
)
_TRANSIENT = {"ReceiveMessage"}


def default_dir() -> Path:
    from mlops import PROJECT_DIR

    configured = os.environ.get(STATE_ENV)
    return Path(configured) if configured else PROJECT_DIR / ".mlops" / "state"


# --- classifying requests ------------------------------------------------------------------------


def classify(environ: dict[str, Any]) -> str:
    """``"read"``, ``"transient"`` or ``"write"`` (anything not known to be one of the others).
    Reads ``wsgi.input`` of a form-encoded POST (the query protocol's Action) and puts it back."""
    method = environ.get("REQUEST_METHOD", "GET")
    if environ.get("PATH_INFO", "").startswith("/moto-api"):
        return "write"
    target = environ.get("HTTP_X_AMZ_TARGET")
    action = target.rsplit(".", 1)[-1] if target else None
    if action is None:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        action = (query.get("Action") or [None])[0]
    if action is None and method == "POST" and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = (urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action") or [None])[0]
    if action is not None:
        if action in _TRANSIENT:
            return "transient"
        return "read" if action.startswith(_READ_PREFIXES) else "write"
    # REST protocols (S3, Batch, Lambda...): GET and HEAD read, the rest may write.
    return "read" if method in ("GET", "HEAD", "OPTIONS") else "write"


def access_key(environ: dict[str, Any]) -> str:
    """The access key a request was signed with (header or presigned query), or ''."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker in authorization:
        return authorization.split(marker, 1)[1].split("/", 1)[0]
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    credential = (query.get("X-Amz-Credential") or query.get("AWSAccessKeyId") or [""])[0]
    return credential.split("/", 1)[0]


# --- pickling moto -------------------------------------------------------------------------------


def _new_lock() -> Any:
    return threading.Lock()


def _new_rlock() -> Any:
    return threading.RLock()


def _private_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_private_key(der, password=None)


def _public_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_public_key(der)


_THREAD_FIELDS = {
    "_target",
    "_name",
    "_args",
    "_kwargs",
    "_daemonic",
    "_ident",
    "_native_id",
    "_tstate_lock",
    "_started",
    "_is_stopped",
    "_initialized",
    "_stderr",
    "_invoke_excepthook",
    "_handle",
}


def _thread_object(cls: Any, state: dict[str, Any]) -> Any:
    """A model that is also a thread (moto's Batch job), as saved: not running (its process died
    with the one that ran it)."""
    obj = cls.__new__(cls)
    threading.Thread.__init__(obj, daemon=True)
    obj.__dict__.update(state)
    return obj


def _defaultdict_subclass(kind: Any, factory: Any, items: dict[Any, Any], attributes: dict[str, Any]) -> Any:
    obj = kind.__new__(kind)
    collections.defaultdict.__init__(obj, factory)
    obj.update(items)
    obj.__dict__.update(attributes)
    return obj


def _versioned_store(kind: Any, lists: dict[str, list[Any]], attributes: dict[str, Any]) -> Any:
    obj = kind.__new__(kind)
    for name, versions in lists.items():
        dict.__setitem__(obj, name, versions)
    obj.__dict__.update(attributes)
    return obj


def _batch_simple(account_id: str, region_name: str) -> Any:
    from moto.batch_simple.models import batch_simple_backends

    return batch_simple_backends[account_id][region_name]


def _key_object(cls: Any, state: dict[str, Any], digest: str) -> Any:
    """An S3 object (moto's FakeKey) with its body read back from the blob store."""
    obj = cls.__new__(cls)
    body = (_LOADING.blobs / digest).read_bytes() if digest else b""
    state = {**state, "value": body}
    obj.__setstate__(state)
    obj._mlops_blob = (digest, None)  # on disk already
    _LOADING.digests.add(digest)
    return obj


class _Loading(threading.local):
    blobs: Path
    digests: set[str]


_LOADING = _Loading()


def _factory_for(factory: Any) -> Any:
    """A picklable stand-in for a default factory moto wrote as a lambda (``lambda:
    defaultdict(dict)``): judged by what it makes, which must be an empty container."""
    made = factory()
    if isinstance(made, collections.defaultdict) and not made:
        inner = made.default_factory
        return _Nested(_factory_for(inner) if _is_local(inner) else inner)
    if type(made) in (dict, list, set, int, str, float) and not made:
        return type(made)
    raise pickle.PicklingError(f"cannot save a default factory that makes {made!r}")


def _is_local(function: Any) -> bool:
    return callable(function) and "<" in getattr(function, "__qualname__", "")


@dataclass(frozen=True)
class _Nested:
    inner: Any

    def __call__(self) -> Any:
        return collections.defaultdict(self.inner)


class _Pickler(pickle.Pickler):
    """pickle, taught what moto's models hold that pickle cannot: locks, threads, cryptography
    keys, lambdas as default factories; and S3 bodies kept apart, by digest."""

    def __init__(self, file: Any, new_blobs: dict[str, bytes]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.new_blobs = new_blobs
        from moto.s3.models import FakeKey

        self._fake_key = FakeKey
        self._lock_types = (type(threading.Lock()), type(threading.RLock()))

    # Types pickle handles as it is (decided by type alone, once): most of what moto holds. The
    # override is called for every object that is not a builtin container or scalar.
    _ordinary: ClassVar[set[type]] = set()

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in self._ordinary:
            return NotImplemented
        if kind in self._lock_types:
            return (_new_rlock if "RLock" in kind.__name__ else _new_lock), ()
        if kind is threading.Condition or kind is threading.Event or kind is threading.Semaphore:
            return kind, ()
        if isinstance(obj, self._fake_key):
            return self._reduce_key(obj)
        if kind.__name__ == "BatchSimpleBackend":
            # A proxy for the Batch backend (all its attributes are that backend's): by name.
            return _batch_simple, (obj.account_id, obj.region_name)
        if isinstance(obj, threading.Thread):
            state = {k: v for k, v in obj.__dict__.items() if k not in _THREAD_FIELDS}
            return _thread_object, (kind, state)
        if kind.__name__ == "_VersionedKeyStore":
            # S3's keys: each name holds the list of its versions, which its items() hides.
            lists = {k: dict.__getitem__(obj, k) for k in dict.keys(obj)}
            return _versioned_store, (kind, lists, obj.__dict__)
        if isinstance(obj, collections.defaultdict) and kind is not collections.defaultdict:
            # A subclass with its own __init__ (moto's SSM ParameterDict): made without calling it.
            factory = obj.default_factory
            if _is_local(factory):
                factory = _factory_for(factory)
            return _defaultdict_subclass, (kind, factory, dict(obj), obj.__dict__)
        if isinstance(obj, collections.defaultdict) and _is_local(obj.default_factory):
            return collections.defaultdict, (_factory_for(obj.default_factory), dict(obj))
        module = kind.__module__ or ""
        if module.startswith("cryptography.") and hasattr(obj, "private_bytes"):
            from cryptography.hazmat.primitives import serialization

            der = obj.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            return _private_key, (der,)
        if (
            module.startswith("cryptography.")
            and hasattr(obj, "public_bytes")
            and kind.__name__.endswith("Key")
        ):
            from cryptography.hazmat.primitives import serialization

            der = obj.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return _public_key, (der,)
        if kind is not collections.defaultdict:  # (its factory decides, per object)
            self._ordinary.add(kind)
        return NotImplemented

    def _reduce_key(self, key: Any) -> Any:
        # A FakeKey's body is set once, when it is made (moto never assigns it again): its digest
        # is computed once and remembered on the object.
        saved = getattr(key, "_mlops_blob", None)
        if saved is None:
            body = key.value
            digest = hashlib.sha256(body).hexdigest() if body else ""
            saved = (digest, body)
            key._mlops_blob = saved
        digest, body = saved
        if body is not None:
            if digest:
                self.new_blobs[digest] = body
            key._mlops_blob = (digest, None)  # once on disk (this snapshot), never again
        state = {k: v for k, v in key.__dict__.items() if k not in ("_value_buffer", "lock", "_mlops_blob")}
        return _key_object, (type(key), state, digest)


def loaded_backends() -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """moto's backends in use: (module, name of its BackendDict) -> account -> region -> backend."""
    from moto.core.base_backend import BackendDict

    found = {}
    for backends in list(BackendDict._instances):  # type: ignore[misc]
        module = sys.modules.get(backends.backend.__module__)
        name = next((n for n, v in vars(module).items() if v is backends), None) if module else None
        if name is None:
            continue  # not reachable by name: nothing would look it up after a restore
        found[(backends.backend.__module__, name)] = {
            account: dict(per_account) for account, per_account in backends.items()
        }
    return found


def restore_backends(saved: dict[tuple[str, str], dict[str, dict[str, Any]]]) -> None:
    for (module, name), accounts in saved.items():
        backends = getattr(importlib.import_module(module), name)
        for account, regions in accounts.items():
            per_account = backends[account]
            for region, backend in regions.items():
                dict.__setitem__(per_account, region, backend)


def requeue_in_flight(saved: dict[tuple[str, str], dict[str, dict[str, Any]]]) -> int:
    """Make every SQS message that was received but not deleted visible again (the process that
    received it is gone), as SQS does once its visibility timeout passes. Returns how many."""
    count = 0
    for (module, _), accounts in saved.items():
        if module != "moto.sqs.models":
            continue
        for regions in accounts.values():
            for backend in regions.values():
                for queue in backend.queues.values():
                    for message in getattr(queue, "_messages", []):
                        if not message.visible:
                            message.change_visibility(0)
                            count += 1
    return count


class StateUnreadable(RuntimeError):
    """The saved state cannot be loaded (the message says what to do)."""


# --- the store -------------------------------------------------------------------------------------


@dataclass
class SnapshotCost:
    snapshots: int = 0
    last_bytes: int = 0
    last_pickle_s: float = 0.0  # under the exclusive lock: writes wait this long
    last_write_s: float = 0.0  # blobs, snapshot file, fsyncs (no lock held)
    total_s: float = 0.0


@dataclass
class StateStore:
    """A directory: ``moto.pickle`` (the last durable snapshot) and ``blobs/`` (S3 bodies)."""

    directory: Path
    cost: SnapshotCost = field(default_factory=SnapshotCost)
    loaded_digests: set[str] = field(default_factory=set)  # the bodies the loaded snapshot names

    @property
    def snapshot_path(self) -> Path:
        return self.directory / SNAPSHOT

    @property
    def blobs(self) -> Path:
        return self.directory / BLOBS

    def exists(self) -> bool:
        return self.snapshot_path.exists()

    def wipe(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def load(self) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
        advice = "start with `mlops up --fresh` (it deletes the saved state)"
        try:
            with self.snapshot_path.open("rb") as f:
                _LOADING.blobs, _LOADING.digests = self.blobs, set()
                saved = pickle.load(f)
        except Exception as exc:  # another moto's classes, a blob deleted by hand...
            raise StateUnreadable(
                f"cannot load {self.snapshot_path} ({type(exc).__name__}: {exc}); {advice}"
            ) from exc
        self.loaded_digests = _LOADING.digests
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise StateUnreadable(
                f"{self.snapshot_path} was written by another version of the local cloud; {advice}"
            )
        backends: dict[tuple[str, str], dict[str, dict[str, Any]]] = saved["backends"]
        return backends

    def dump(self) -> tuple[bytes, dict[str, bytes]]:
        """Pickle moto's backends (the caller holds every write back). Returns the snapshot and
        the bodies not yet in the blob store."""
        buffer, new_blobs = io.BytesIO(), dict[str, bytes]()
        _Pickler(buffer, new_blobs).dump({"format": FORMAT, "backends": loaded_backends()})
        return buffer.getvalue(), new_blobs

    def write(self, snapshot: bytes, new_blobs: dict[str, bytes]) -> None:
        """The blobs, then the snapshot, each durable before anything names it."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        wrote_blob = False
        for digest, body in new_blobs.items():
            path = self.blobs / digest
            if not path.exists():
                _write_file(path, body)
                wrote_blob = True
        if wrote_blob:
            _fsync_dir(self.blobs)
        _write_file(self.snapshot_path, snapshot)
        _fsync_dir(self.directory)

    def remove_temporaries(self) -> int:
        """Delete what a write killed half-way left (never read: only a rename publishes a file)."""
        removed = 0
        for folder in (self.directory, self.blobs):
            if folder.exists():
                for path in folder.glob(".*"):
                    path.unlink()
                    removed += 1
        return removed

    def collect_garbage(self, keep: Iterable[str]) -> int:
        """Delete the blobs no snapshot names any more (at start, before anything runs)."""
        keep = set(keep)
        removed = 0
        if self.blobs.exists():
            for path in self.blobs.iterdir():
                if path.name not in keep:
                    path.unlink()
                    removed += 1
        return removed


def _write_file(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- group commit ----------------------------------------------------------------------------------


class Committer:
    """Snapshots on a thread of its own; writes share a lock that a snapshot takes exclusively."""

    def __init__(self, store: StateStore, internal_delay_s: float = 0.5) -> None:
        self.store = store
        self.internal_delay_s = internal_delay_s  # how long the functions' own writes may wait
        self._cond = threading.Condition()
        self._writing = 0  # writes in progress
        self._snapshotting = False
        self._finished = 0  # writes finished (their sequence numbers)
        self._durable = 0  # every write up to this one is in the snapshot on disk
        self._waiting = 0  # clients held until a snapshot covers them
        self._dirty_since: float | None = None
        self._stop = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mlops-state", daemon=True)

    def start(self) -> Committer:
        self._thread.start()
        return self

    @contextlib.contextmanager
    def changing(self) -> Iterator[None]:
        """Around a request that may change moto's state: never while a snapshot is pickled."""
        with self._cond:
            while self._snapshotting:
                self._cond.wait()
            self._writing += 1
        try:
            yield
        finally:
            with self._cond:
                self._writing -= 1
                self._cond.notify_all()

    def finished_write(self) -> int:
        with self._cond:
            self._finished += 1
            if self._dirty_since is None:
                self._dirty_since = time.monotonic()
            self._cond.notify_all()
            return self._finished

    def wait_durable(self, sequence: int | None = None, timeout_s: float = 120.0) -> bool:
        """Until every write up to ``sequence`` (default: every one finished so far) is on disk."""
        with self._cond:
            target = self._finished if sequence is None else sequence
            if self._durable >= target:
                return True
            self._waiting += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._durable >= target or self._stop, timeout_s) and (
                    self._durable >= target
                )
            finally:
                self._waiting -= 1

    def _due(self) -> bool:
        if self._finished <= self._durable:
            return False
        if self._waiting:
            return True
        assert self._dirty_since is not None
        # Unheld changes only: at most a fifth of the time goes to snapshots (they take the GIL).
        delay = max(self.internal_delay_s, 4 * self.store.cost.last_pickle_s)
        return time.monotonic() - self._dirty_since >= delay

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and not self._due():
                    self._cond.wait(self.internal_delay_s / 4)
                if self._stop and self._finished <= self._durable:
                    return
                self._snapshotting = True
                while self._writing:
                    self._cond.wait()
                covered = self._finished
                self._dirty_since = None
            try:
                started = time.perf_counter()
                snapshot, blobs = self._dump()
                pickled = time.perf_counter()
            except BaseException as exc:  # recorded; writes then fail rather than lie
                self._fail(exc)
                return
            finally:
                with self._cond:
                    self._snapshotting = False
                    self._cond.notify_all()
            try:
                self.store.write(snapshot, blobs)
            except BaseException as exc:
                self._fail(exc)
                return
            done = time.perf_counter()
            cost = self.store.cost
            cost.snapshots += 1
            cost.last_bytes = len(snapshot)
            cost.last_pickle_s = pickled - started
            cost.last_write_s = done - pickled
            cost.total_s += done - started
            with self._cond:
                self._durable = covered
                self._cond.notify_all()

    def _dump(self) -> tuple[bytes, dict[str, bytes]]:
        """The snapshot; again if a request classed as a read changed something as it was pickled
        (pickle then meets a dict changing size): such a change is not one to keep, only one not
        to trip on."""
        for attempt in range(5):
            try:
                return self.store.dump()
            except RuntimeError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _fail(self, exc: BaseException) -> None:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
        with self._cond:
            self.error = exc
            self._stop = True
            self._cond.notify_all()

    def stop(self) -> None:
        """Write what is not yet on disk, then end."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=120)


class DurableApp:
    """moto's WSGI app, with each write's answer held until a snapshot holds it (see the module)."""

    def __init__(self, app: Callable[..., Any], committer: Committer, internal_keys: Callable[[], set[str]]):
        self.app = app
        self.committer = committer
        self.internal_keys = internal_keys

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        kind = classify(environ)
        if kind == "read" or kind == "transient":  # a receive holds the lock itself (hold_receives)
            return self.app(environ, start_response)
        answer: list[Any] = []

        def hold(status: str, headers: list[Any], exc_info: Any = None) -> Callable[[bytes], Any]:
            answer[:] = [status, headers, exc_info]
            return lambda data: None

        with self.committer.changing():
            result = self.app(environ, hold)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            sequence = self.committer.finished_write()
        held = access_key(environ) not in self.internal_keys()
        if held and not self.committer.wait_durable(sequence):
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"the local cloud could not save its state; see its log"]
        start_response(answer[0], answer[1], answer[2])
        return [body]


def hold_receives(committer: Committer | None) -> None:
    """SQS long polls wait outside the lock a snapshot takes: moto's ReceiveMessage waits for
    messages for up to WaitTimeSeconds (the event runtime polls for 1 s, a client may for 20), and
    a snapshot would wait for every poll in progress. Here each pass over the queue (which marks
    messages received, or moves them to the DLQ) holds the lock; the waits between passes do not.
    ``None`` puts moto's own back."""
    from moto.sqs.models import SQSBackend

    original = getattr(SQSBackend.receive_message, "_mlops_original", SQSBackend.receive_message)
    if committer is None:
        SQSBackend.receive_message = original  # type: ignore[method-assign]
        return

    def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int,
                        *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        deadline = time.monotonic() + wait_seconds_timeout
        while True:
            with committer.changing():
                got = original(self, queue_name, count, 0, *args, **kwargs)
            remaining = deadline - time.monotonic()
            if got or remaining <= 0:
                return got
            queue = self.get_queue(queue_name)
            queue.wait_for_messages(min(1.0, remaining))
            time.sleep(0.01)  # visible messages none may take (in a pending group, DLQ-bound)

    receive_message._mlops_original = original  # type: ignore[attr-defined]
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]


class DurableMotoServer:
    """moto's ThreadedMotoServer with ``DurableApp`` in front of its app."""

    def __init__(self, committer: Committer, internal_keys: Callable[[], set[str]], host: str, port: int):
        self.committer, self.internal_keys = committer, internal_keys
        self.host, self.port = host, port
        self._ready = threading.Event()

    def _serve(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = DurableApp(DomainDispatcherApplication(create_backend_app), self.committer, self.internal_keys)
        self._server = make_server(self.host, self.port, app, True, request_handler=MotoRequestHandler)
        self._ready.set()
        self._server.serve_forever()

    def start(self) -> None:
        hold_receives(self.committer)
        self._thread = threading.Thread(target=self._serve, name="moto", daemon=True)
        self._thread.start()
        self._ready.wait()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
        hold_receives(None)
