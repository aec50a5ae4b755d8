"""Lambda's log delivery, for the local cloud: what a function prints reaches its log group.

On AWS, Lambda sends a function's stdout to ``/aws/lambda/<function>``; the API function's capture
lines (``{"mlops_capture":1,"records":[...]}``, one per captured request) go on from there through the
subscription filter ``{ $.mlops_capture = 1 }`` to the capture stream (Firehose -> S3). In the local
cloud the functions are threads of one process, so ``CaptureTee`` stands in stdout's place: it passes
everything through, and hands each complete line that may be a capture line to a ``LogShipper``,
whose thread puts them into moto's CloudWatch Logs (``put_log_events``, batched), where moto's
subscription filter delivers them to its Firehose stream, which writes to S3.

Only capture lines are shipped: moto delivers every event of a subscribed group, whatever the
filter pattern (5.2.5 ignores patterns), so shipping the functions' other lines would put them under
``capture/live/``, which AWS never does; and they are most of the volume. The function's thread pays
for a substring test and a queue put; the JSON check and the calls run on the shipper's thread.

The shipper calls moto as the local cloud itself (its thread starts outside any function's
identity, so the local IAM does not check it): delivering a function's logs is Lambda's work, not a
call of the function's code.
"""

from __future__ import annotations

import contextlib
import io
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MARKER = "mlops_capture"
# PutLogEvents: at most 10,000 events and 1,048,576 bytes a call, each event counted with 26 bytes more.
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26


def is_capture_line(line: str) -> bool:
    """What the subscription filter ``{ $.mlops_capture = 1 }`` lets through: a JSON object whose
    ``mlops_capture`` is 1."""
    if MARKER not in line:
        return False
    try:
        event = json.loads(line)
    except ValueError:
        return False
    value = event.get(MARKER) if isinstance(event, dict) else None
    return type(value) in (int, float) and value == 1  # (a JSON true is no number to the filter)


@dataclass(frozen=True)
class LogEvent:
    function: str  # the function that printed it (its log group is /aws/lambda/<function>)
    message: str
    timestamp_ms: int


def batches(events: list[LogEvent]) -> list[list[LogEvent]]:
    """The events in PutLogEvents calls: in time order, each call within the service's limits."""
    out: list[list[LogEvent]] = []
    size = 0
    for event in sorted(events, key=lambda e: e.timestamp_ms):
        cost = len(event.message.encode()) + EVENT_OVERHEAD
        if not out or len(out[-1]) >= MAX_BATCH_EVENTS or size + cost > MAX_BATCH_BYTES:
            out.append([])
            size = 0
        out[-1].append(event)
        size += cost
    return out


class LogShipper:
    """Puts queued lines into their functions' log groups from a thread of its own, in batches."""

    def __init__(self, logs: Any, interval_s: float = 0.1) -> None:
        self._logs = logs
        self._interval = interval_s
        self._queue: queue.SimpleQueue[LogEvent | None] = queue.SimpleQueue()
        self._streams: dict[str, str] = {}  # log group -> this run's log stream
        self._pending = 0  # queued and not yet put (or dropped as not a capture line)
        self._done = threading.Condition()
        self._thread: threading.Thread | None = None
        self.shipped = 0
        self.errors: list[str] = []

    def ship(self, function: str, line: str) -> None:
        """Queue a line the function printed (called on the function's thread: cheap). Once the
        shipper has stopped, lines are no longer delivered (as after a function's end)."""
        if self._thread is None:
            return
        with self._done:
            self._pending += 1
        self._queue.put(LogEvent(function, line, int(time.time() * 1000)))

    def start(self) -> LogShipper:
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self._thread.start()
        return self

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every line queued so far is in its log group (False on timeout)."""
        with self._done:
            return self._done.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ship what is queued, then end the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout_s)
        self._thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            taken: list[LogEvent] = []
            item = self._queue.get()
            deadline = time.monotonic() + self._interval
            while True:
                if item is None:
                    stopping = True
                else:
                    taken.append(item)
                try:
                    item = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
            self._put(taken)

    def _put(self, taken: list[LogEvent]) -> None:
        events = [e for e in taken if is_capture_line(e.message)]
        try:
            by_group: dict[str, list[LogEvent]] = {}
            for event in events:
                by_group.setdefault(f"/aws/lambda/{event.function}", []).append(event)
            for group, group_events in by_group.items():
                stream = self._stream(group)
                for batch in batches(group_events):
                    self._logs.put_log_events(
                        logGroupName=group,
                        logStreamName=stream,
                        logEvents=[{"timestamp": e.timestamp_ms, "message": e.message} for e in batch],
                    )
                    self.shipped += len(batch)
        except Exception as exc:  # a lost batch must not end the thread: later lines still ship
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            with self._done:
                self._pending -= len(taken)
                self._done.notify_all()

    def _stream(self, group: str) -> str:
        """This run's log stream in the group (Lambda's naming), the group made if it is missing."""
        if group not in self._streams:
            with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
                self._logs.create_log_group(logGroupName=group)
            name = time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + uuid.uuid4().hex
            self._logs.create_log_stream(logGroupName=group, logStreamName=name)
            self._streams[group] = name
        return self._streams[group]


class CaptureTee(io.TextIOBase):
    """A stand-in for stdout: writes through to ``target``, and hands every complete line that
    mentions the marker (per thread: ``print`` writes a line and its newline separately) to the
    shipper ``route()`` names with the function printing it, if any: code that runs in no function
    (the operator, a test) ships nothing, as nothing runs outside a function in Lambda."""

    def __init__(self, target: Any, route: Callable[[], tuple[LogShipper, str] | None]) -> None:
        self.target = target
        self.route = route
        self._partial = threading.local()

    def write(self, text: str) -> int:
        written = int(self.target.write(text))
        held = getattr(self._partial, "text", "") + text
        if "\n" not in held:
            self._partial.text = held
            return written
        *lines, self._partial.text = held.split("\n")
        for line in lines:
            if MARKER in line and (to := self.route()) is not None:
                shipper, function = to
                shipper.ship(function, line)
        return written

    def flush(self) -> None:
        self.target.flush()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.target, "encoding", "utf-8"))
