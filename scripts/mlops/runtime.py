"""The local event runtime: Lambda's SQS event-source semantics for every ``@app.on_sqs_message``.

What Lambda does, and so what this does:

* long-polls the queue, gathering up to the handler's ``batch_size`` messages for at most its
  ``maximum_batching_window_in_seconds`` (or invokes at once when the window is 0);
* invokes the handler with a real SQS event (real message ids, receipt handles and attributes)
  and a context whose remaining time counts down from the function's timeout;
* on success deletes the batch; on a partial batch response (``batchItemFailures``) deletes all
  but the failed records; an invalid response or an exception deletes nothing, so the whole
  batch returns to the queue when its visibility timeout expires; an invocation that overruns its
  timeout counts as failed;
* leaves redrive to SQS: after ``maxReceiveCount`` receives moto moves a message to its DLQ;
* runs several batches of a function at once, as the event source mapping scales its pollers: up
  to the function's reserved concurrency (``concurrency``), so a long invocation (a large upload)
  does not hold up the messages behind it. While every slot is busy nothing more is received, as
  Lambda stops polling a function at its concurrency limit. Each invocation runs on a thread of
  its own, with its own context, as the function (``identity``); settlement is per invocation.

The rules (``build_sqs_event``, ``to_delete``) are pure functions; ``SqsPoller`` only polls,
invokes and settles.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("mlops.runtime")

MAX_RECEIVE = 10  # SQS ReceiveMessage limit

# A function's name -> a context in which calls are made as that function (the local cloud's IAM).
Identity = Callable[[str], contextlib.AbstractContextManager[Any]]


def _acting(identity: Identity | None, function: str) -> contextlib.AbstractContextManager[Any]:
    return identity(function) if identity else contextlib.nullcontext()


@dataclass(frozen=True)
class Subscription:
    """One handler bound to one queue, with the settings Lambda's event source mapping would use."""

    function_name: str  # <app>-<stage>-<handler>, as Chalice names the Lambda function
    handler_name: str
    handler: Callable[[dict[str, Any], Any], Any]
    queue_name: str
    batch_size: int = 1
    batching_window_s: float = 0.0
    timeout_s: float = 60.0
    memory_mb: int = 128
    # Batches in flight at once. Lambda starts with five concurrent batches per queue and scales up
    # to the function's reserved concurrency; subscriptions_from_app gives min(reserved, LOCAL_CONCURRENCY).
    concurrency: int = 1


# The local cap on a function's concurrent batches: Lambda's starting point (five per queue). The
# local cloud is one process on a few cores; more threads would only queue for them.
LOCAL_CONCURRENCY = 5


def concurrency_for(settings: dict[str, Any]) -> int:
    """A function's concurrent invocations locally: its reserved concurrency when set, at most
    LOCAL_CONCURRENCY."""
    reserved = settings.get("reserved_concurrency")
    return max(1, min(int(reserved), LOCAL_CONCURRENCY)) if reserved is not None else LOCAL_CONCURRENCY


class LambdaContext:
    """What the Lambda runtime passes as ``context``."""

    def __init__(
        self, function_name: str, timeout_s: float, memory_mb: int, region: str, account: str
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def build_sqs_event(messages: Iterable[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS event as Lambda delivers it, from ReceiveMessage results."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": {
                    name: _lambda_message_attribute(value)
                    for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def _lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    # ReceiveMessage says StringValue/DataType; the Lambda event says stringValue/dataType.
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": value.get("BinaryValue"),
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value.get("DataType"),
    }


def to_delete(event: dict[str, Any], response: Any) -> tuple[list[str], list[str]]:
    """Which receipt handles a successful invocation deletes: (deleted, failed message ids).

    With ReportBatchItemFailures, a response naming failed records keeps just those; an empty or
    absent list means all succeeded; an identifier that is not in the batch (or is empty) makes
    Lambda treat the whole batch as failed.
    """
    records = event["Records"]
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if not failures:
        return [r["receiptHandle"] for r in records], []
    ids = {r["messageId"] for r in records}
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in ids:
            return [], sorted(ids)
        failed.add(identifier)
    return [r["receiptHandle"] for r in records if r["messageId"] not in failed], sorted(failed)


@dataclass
class Invocation:
    """What one invocation did (kept for `mlops status`, the demo and tests)."""

    handler_name: str
    message_ids: list[str]
    failed_ids: list[str]
    error: str | None
    duration_s: float
    finished_at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed_ids


class SqsPoller(threading.Thread):
    """Polls one queue for one subscription and invokes its handler, up to ``concurrency`` batches
    at once (each on a thread of its own)."""

    def __init__(
        self,
        subscription: Subscription,
        sqs: Any,
        region: str,
        account: str,
        record: Callable[[Invocation], None],
        poll_wait_s: int = 1,
        identity: Identity | None = None,
    ) -> None:
        super().__init__(name=f"poller-{subscription.handler_name}", daemon=True)
        self._identity = identity
        self.subscription = subscription
        self._sqs = sqs
        self._region = region
        self._account = account
        self._record = record
        self._poll_wait_s = poll_wait_s
        self._stopping = threading.Event()
        self._slots = threading.BoundedSemaphore(max(1, subscription.concurrency))
        self._in_flight: set[threading.Thread] = set()
        self._in_flight_lock = threading.Lock()
        self._invocations = 0
        self.queue_url = sqs.get_queue_url(QueueName=subscription.queue_name)["QueueUrl"]
        self.queue_arn = ""  # read by the poller as the function (run)

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        """The poller, then the invocations still running (each within what is left of ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        super().join(timeout)
        with self._in_flight_lock:
            running = list(self._in_flight)
        for thread in running:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def run(self) -> None:
        # The event source mapping polls with the function's role, and the function runs with it.
        with _acting(self._identity, self.subscription.handler_name):
            while not self.queue_arn and not self._stopping.is_set():
                try:  # as Lambda's event source mapping reads its queue, with the function's role
                    self.queue_arn = self._sqs.get_queue_attributes(
                        QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
                    )["Attributes"]["QueueArn"]
                except Exception:
                    log.exception(
                        "event runtime: %s cannot read its queue; retrying", self.subscription.handler_name
                    )
                    self._stopping.wait(1.0)
            while not self._stopping.is_set():
                # A free slot first: at its concurrency limit a function receives nothing more.
                if not self._slots.acquire(timeout=0.5):
                    continue
                dispatched = False
                try:
                    messages = self._gather()
                    if messages:
                        self._dispatch(messages)
                        dispatched = True
                except Exception:  # the runtime must outlive anything a poll does
                    log.exception("event runtime: poller %s failed; retrying", self.subscription.handler_name)
                    self._stopping.wait(1.0)
                finally:
                    if not dispatched:
                        self._slots.release()

    def _dispatch(self, messages: list[dict[str, Any]]) -> None:
        """One invocation on a thread of its own; its slot is freed when it has settled."""
        self._invocations += 1
        thread = threading.Thread(
            target=self._run_invocation,
            args=(messages,),
            name=f"invoke-{self.subscription.handler_name}-{self._invocations}",
            daemon=True,
        )
        with self._in_flight_lock:
            self._in_flight.add(thread)
        thread.start()

    def _run_invocation(self, messages: list[dict[str, Any]]) -> None:
        try:
            with _acting(self._identity, self.subscription.handler_name):
                self._invoke(messages)
        except Exception:  # settling failed (a delete): the messages come back after their visibility
            log.exception("event runtime: %s could not settle its batch", self.subscription.handler_name)
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(threading.current_thread())
            self._slots.release()

    def _gather(self) -> list[dict[str, Any]]:
        sub = self.subscription
        batch: dict[str, dict[str, Any]] = {}  # by message id: a redelivery replaces its receipt handle
        window_ends: float | None = None
        while not self._stopping.is_set() and len(batch) < sub.batch_size:
            wait = self._poll_wait_s
            if window_ends is not None:
                remaining = window_ends - time.monotonic()
                if remaining <= 0:
                    break
                wait = min(wait, math.ceil(remaining))
            got = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(MAX_RECEIVE, sub.batch_size - len(batch)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            batch.update((m["MessageId"], m) for m in got)
            if batch and sub.batching_window_s <= 0:
                break  # no window: invoke with what one poll returned
            if batch and window_ends is None:
                window_ends = time.monotonic() + sub.batching_window_s
        return list(batch.values())

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        sub = self.subscription
        event = build_sqs_event(messages, self.queue_arn, self._region)
        context = LambdaContext(sub.function_name, sub.timeout_s, sub.memory_mb, self._region, self._account)
        started = time.monotonic()
        ids = [r["messageId"] for r in event["Records"]]
        try:
            response = sub.handler(event, context)
        except Exception as exc:
            # Nothing is deleted: the batch becomes visible again after the visibility timeout.
            log.error(
                "%s raised %s: the batch returns to the queue\n%s",
                sub.handler_name,
                exc,
                traceback.format_exc(),
            )
            self._record(
                Invocation(
                    sub.handler_name, ids, ids, f"{type(exc).__name__}: {exc}", time.monotonic() - started
                )
            )
            return
        duration = time.monotonic() - started
        if duration > sub.timeout_s:
            log.error(
                "%s ran %.1fs, past its %ss timeout: the batch returns",
                sub.handler_name,
                duration,
                sub.timeout_s,
            )
            self._record(Invocation(sub.handler_name, ids, ids, "Task timed out", duration))
            return
        receipts, failed = to_delete(event, response)
        for start in range(0, len(receipts), MAX_RECEIVE):
            chunk = receipts[start : start + MAX_RECEIVE]
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(chunk)],
            )
        self._record(Invocation(sub.handler_name, ids, failed, None, duration))


@dataclass(frozen=True)
class Schedule:
    """An ``@app.schedule`` handler and how often EventBridge would invoke it."""

    function_name: str
    handler_name: str
    handler: Callable[[dict[str, Any], Any], Any]
    interval_s: float
    timeout_s: float = 60.0
    memory_mb: int = 128
    concurrency: int = 1  # invocations at once: the rule's and fire()'s (reserved concurrency 1: one)


def interval_seconds(expression: Any) -> float:
    """rate(...) -> its period; cron(...) and anything else -> hourly (the local cloud does not
    evaluate cron). ``MLOPS_SCHEDULE_SECONDS`` overrides every schedule, e.g. to watch one fire."""
    import os

    if os.environ.get("MLOPS_SCHEDULE_SECONDS"):
        return float(os.environ["MLOPS_SCHEDULE_SECONDS"])
    units = {"MINUTES": 60, "HOURS": 3600, "DAYS": 86400}
    if hasattr(expression, "value") and hasattr(expression, "unit"):
        return float(expression.value * units[str(expression.unit).upper()])
    text = str(getattr(expression, "to_string", lambda: expression)())
    if text.startswith("rate(") and text.endswith(")"):
        value, unit = text[5:-1].split()
        return float(int(value) * units[unit.upper().rstrip("S") + "S"])
    return 3600.0


def scheduled_event(schedule: Schedule, region: str, account: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{schedule.function_name}"],
        "detail": {},
    }


class ScheduleTicker(threading.Thread):
    """Invokes one scheduled handler every interval, as an EventBridge rule would."""

    def __init__(
        self,
        schedule: Schedule,
        region: str,
        account: str,
        record: Callable[[Invocation], None],
        identity: Identity | None = None,
    ) -> None:
        super().__init__(name=f"schedule-{schedule.handler_name}", daemon=True)
        self.schedule, self._region, self._account, self._record = schedule, region, account, record
        self._identity = identity
        self._stopping = threading.Event()
        # With reserved concurrency 1, an invocation made now (fire) waits for the rule's, as Lambda
        # would throttle it and EventBridge retry it.
        self._slots = threading.BoundedSemaphore(max(1, schedule.concurrency))

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.wait(self.schedule.interval_s):
            self.fire()

    def fire(self) -> Any:
        """One invocation now, as the rule would make it (the handler's result; None if it failed)."""
        sched = self.schedule
        with self._slots:
            context = LambdaContext(
                sched.function_name, sched.timeout_s, sched.memory_mb, self._region, self._account
            )
            started = time.monotonic()
            result, error = self._call(context)
        self._record(Invocation(sched.handler_name, [], [], error, time.monotonic() - started))
        return result

    def _call(self, context: LambdaContext) -> tuple[Any, str | None]:
        sched = self.schedule
        result = None
        try:
            with _acting(self._identity, sched.handler_name):
                result = sched.handler(scheduled_event(sched, self._region, self._account), context)
            error = None
        except Exception as exc:  # EventBridge retries async invocations; locally: log and go on
            log.exception("scheduled %s failed", sched.handler_name)
            error = f"{type(exc).__name__}: {exc}"
        return result, error


class EventRuntime:
    """Runs one poller per subscription and one ticker per schedule until stopped."""

    def __init__(
        self,
        subscriptions: list[Subscription],
        sqs: Any,
        region: str = "us-east-1",
        account: str = "123456789012",
        history: int = 1000,
        schedules: list[Schedule] | None = None,
        identity: Identity | None = None,
    ) -> None:
        self.subscriptions = subscriptions
        self._identity = identity
        self.schedules = schedules or []
        self._sqs = sqs
        self._region = region
        self._account = account
        self.invocations: deque[Invocation] = deque(maxlen=history)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Invocation], None]] = []
        self._pollers: list[SqsPoller] = []
        self._tickers: list[ScheduleTicker] = []

    def add_listener(self, listener: Callable[[Invocation], None]) -> None:
        self._listeners.append(listener)

    def _record(self, invocation: Invocation) -> None:
        with self._lock:
            self.invocations.append(invocation)
        for listener in self._listeners:
            listener(invocation)

    def start(self) -> None:
        for sub in self.subscriptions:
            poller = SqsPoller(
                sub, self._sqs, self._region, self._account, self._record, identity=self._identity
            )
            poller.start()
            self._pollers.append(poller)
        for schedule in self.schedules:
            ticker = ScheduleTicker(schedule, self._region, self._account, self._record, self._identity)
            ticker.start()
            self._tickers.append(ticker)

    def fire(self, handler_name: str) -> Any:
        """Invoke a scheduled handler once now, on this thread (as `aws events` would to test a rule)."""
        for ticker in self._tickers:
            if ticker.schedule.handler_name == handler_name:
                return ticker.fire()
        raise KeyError(f"no schedule named {handler_name!r}")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Tell every poller and ticker to stop, then wait for them ``timeout_s`` in all (not each:
        Ctrl-C must stop the local cloud promptly). A handler still running then is left to its
        daemon thread; its batch, not deleted, returns to the queue as a crashed Lambda's does."""
        workers: list[SqsPoller | ScheduleTicker] = [*self._pollers, *self._tickers]
        for worker in workers:
            worker.stop()
        deadline = time.monotonic() + timeout_s
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._pollers.clear()
        self._tickers.clear()


def subscriptions_from_app(app: Any, stage: str, stage_config: dict[str, Any]) -> list[Subscription]:
    """The SQS subscriptions a Chalice app declares, with the stage's per-function settings."""
    from chalice.app import SQSEventConfig

    functions = stage_config.get("lambda_functions", {})
    subs = []
    for source in app.event_sources:
        if not isinstance(source, SQSEventConfig):
            continue
        settings = functions.get(source.name, {})
        queue = source.queue or (source.queue_arn or "").rsplit(":", 1)[-1]
        subs.append(
            Subscription(
                function_name=f"{app.app_name}-{stage}-{source.name}",
                handler_name=source.name,
                handler=app.handler_map[source.name],
                queue_name=queue,
                batch_size=source.batch_size,
                batching_window_s=float(source.maximum_batching_window_in_seconds or 0),
                timeout_s=float(settings.get("lambda_timeout", stage_config.get("lambda_timeout", 60))),
                memory_mb=int(
                    settings.get("lambda_memory_size", stage_config.get("lambda_memory_size", 128))
                ),
                concurrency=concurrency_for(settings),
            )
        )
    return subs


def schedules_from_app(app: Any, stage: str, stage_config: dict[str, Any]) -> list[Schedule]:
    """The ``@app.schedule`` handlers a Chalice app declares, with the stage's function settings."""
    from chalice.app import ScheduledEventConfig

    functions = stage_config.get("lambda_functions", {})
    found = []
    for source in app.event_sources:
        if isinstance(source, ScheduledEventConfig):
            settings = functions.get(source.name, {})
            found.append(
                Schedule(
                    function_name=f"{app.app_name}-{stage}-{source.name}",
                    handler_name=source.name,
                    handler=app.handler_map[source.name],
                    interval_s=interval_seconds(source.schedule_expression),
                    timeout_s=float(settings.get("lambda_timeout", 60)),
                    memory_mb=int(settings.get("lambda_memory_size", 128)),
                    concurrency=concurrency_for(settings),
                )
            )
    return found
