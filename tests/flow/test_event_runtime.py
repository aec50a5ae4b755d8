"""The event runtime gives handlers Lambda's SQS semantics. Against a moto server, as locally.
(Which messages a partial batch response deletes: tests/unit/test_batch_item_failures.py; the
subscriptions and schedules read from the app: tests/service/test_app_wiring.py.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import boto3
import pytest

from mlops.runtime import EventRuntime, Subscription
from tests.support import wait_until


@pytest.fixture(scope="module")
def sqs() -> Iterator[object]:
    from moto.server import ThreadedMotoServer

    from mlops.localcloud import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{port}")
    server.stop()


_counter = iter(range(10_000))


def _queue(sqs, visibility=5, max_receive=3):
    """A fresh queue with a DLQ. Tests of retries pass a short visibility so they happen in seconds."""
    name = f"q{next(_counter)}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive}),
        },
    )["QueueUrl"]
    return name, url, dlq_url


def _depth(sqs, url):
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


class Recorder:
    """A handler that records what it was given and answers as told."""

    def __init__(self, answer=None):
        self.events: list[dict] = []
        self.contexts: list[object] = []
        self.answer = answer or (lambda event: {"batchItemFailures": []})
        self.lock = threading.Lock()

    def __call__(self, event, context):
        with self.lock:
            self.events.append(event)
            self.contexts.append(context)
        return self.answer(event)

    def bodies(self):
        return [r["body"] for e in self.events for r in e["Records"]]


def _run(sqs, name, handler, **kwargs):
    sub = Subscription(
        function_name=f"serverless-mlops-local-{name}",
        handler_name=name,
        handler=handler,
        queue_name=name,
        **kwargs,
    )
    runtime = EventRuntime([sub], sqs)
    runtime.start()
    return runtime


def _send(sqs, url, bodies):
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)


def test_successful_batch_is_deleted(sqs):
    name, url, _ = _queue(sqs)
    handler = Recorder()
    _send(sqs, url, ["a", "b", "c"])
    runtime = _run(sqs, name, handler, batch_size=10)
    try:
        assert wait_until(lambda: sorted(handler.bodies()) == ["a", "b", "c"])
        assert wait_until(lambda: _depth(sqs, url) == 0)
    finally:
        runtime.stop()


def test_event_carries_real_message_ids_receipt_handles_and_source_arn(sqs):
    name, url, _ = _queue(sqs)
    handler = Recorder()
    sent = sqs.send_message(QueueUrl=url, MessageBody="hello")["MessageId"]
    runtime = _run(sqs, name, handler)
    try:
        assert wait_until(lambda: handler.events)
        (record,) = handler.events[0]["Records"]
        assert record["messageId"] == sent
        assert record["receiptHandle"]
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"].endswith(f":{name}")
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
    finally:
        runtime.stop()


def test_context_counts_down_from_the_function_timeout(sqs):
    name, url, _ = _queue(sqs)
    handler = Recorder()
    _send(sqs, url, ["x"])
    runtime = _run(sqs, name, handler, timeout_s=30, memory_mb=256)
    try:
        assert wait_until(lambda: handler.contexts)
        context = handler.contexts[0]
        assert 25_000 < context.get_remaining_time_in_millis() <= 30_000
        assert context.function_name == f"serverless-mlops-local-{name}"
        assert context.memory_limit_in_mb == 256
        assert context.aws_request_id
    finally:
        runtime.stop()


def test_partial_failure_returns_only_the_failed_records(sqs):
    # The visibility timeout is what returns a failed record; it must also outlast a successful
    # invocation on a busy machine (at 2 s this test failed once under load: a record deleted after
    # its timeout comes back a second time).
    name, url, _ = _queue(sqs, visibility=10, max_receive=10)

    def fail_b_first_time(event):
        failures = [
            {"itemIdentifier": r["messageId"]}
            for r in event["Records"]
            if r["body"] == "b" and r["attributes"]["ApproximateReceiveCount"] == "1"
        ]
        return {"batchItemFailures": failures}

    handler = Recorder(fail_b_first_time)
    _send(sqs, url, ["a", "b", "c"])
    runtime = _run(sqs, name, handler, batch_size=10)
    try:
        assert wait_until(lambda: _depth(sqs, url) == 0)
        bodies = handler.bodies()
        assert sorted(bodies) == ["a", "b", "b", "c"]  # only b came back
    finally:
        runtime.stop()


def test_exception_returns_the_whole_batch(sqs):
    name, url, _ = _queue(sqs, visibility=10, max_receive=10)
    calls = []

    def explode_first(event):
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return None

    handler = Recorder(explode_first)
    _send(sqs, url, ["a", "b"])
    runtime = _run(sqs, name, handler, batch_size=10)
    try:
        assert wait_until(lambda: _depth(sqs, url) == 0)
        assert sorted(handler.bodies()) == ["a", "a", "b", "b"]  # both delivered again
        assert runtime.invocations[0].error == "RuntimeError: boom"
    finally:
        runtime.stop()


def test_poison_message_lands_in_the_dlq_after_max_receive_count(sqs):
    name, url, dlq_url = _queue(sqs, visibility=1, max_receive=2)

    def always_fail(event):
        raise ValueError("poison")

    handler = Recorder(always_fail)
    _send(sqs, url, ["poison"])
    runtime = _run(sqs, name, handler)
    try:
        assert wait_until(lambda: _depth(sqs, dlq_url) == 1)
        assert _depth(sqs, url) == 0
        assert handler.bodies() == ["poison", "poison"]  # tried maxReceiveCount times
        (dead,) = sqs.receive_message(QueueUrl=dlq_url)["Messages"]
        assert dead["Body"] == "poison"
    finally:
        runtime.stop()


def test_batching_window_gathers_messages_into_one_invocation(sqs):
    name, url, _ = _queue(sqs)
    handler = Recorder()
    _send(sqs, url, [str(i) for i in range(15)])
    runtime = _run(sqs, name, handler, batch_size=15, batching_window_s=2)
    try:
        assert wait_until(lambda: len(handler.bodies()) == 15)
        assert len(handler.events) == 1  # 15 messages, more than one receive, one invocation
    finally:
        runtime.stop()


def test_batch_size_caps_each_invocation(sqs):
    name, url, _ = _queue(sqs)
    handler = Recorder()
    _send(sqs, url, [str(i) for i in range(7)])
    runtime = _run(sqs, name, handler, batch_size=3, batching_window_s=1)
    try:
        assert wait_until(lambda: len(handler.bodies()) == 7)
        assert max(len(e["Records"]) for e in handler.events) <= 3
    finally:
        runtime.stop()


def test_duplicate_deliveries_have_one_effect_with_an_idempotent_handler(sqs):
    name, url, _ = _queue(sqs)
    effects: set[str] = set()
    handler = Recorder(lambda event: effects.update(json.loads(r["body"])["id"] for r in event["Records"]))
    _send(sqs, url, [json.dumps({"id": "upload-1"})] * 5)
    runtime = _run(sqs, name, handler, batch_size=2)
    try:
        assert wait_until(lambda: len(handler.bodies()) == 5)
        assert effects == {"upload-1"}
    finally:
        runtime.stop()


def test_a_schedule_invokes_its_handler_with_a_scheduled_event(sqs):
    from mlops.runtime import Schedule

    events = []
    schedule = Schedule(
        "fn-tick", "tick", lambda event, context: events.append((event, context)), interval_s=0.2
    )
    runtime = EventRuntime([], sqs, schedules=[schedule])
    runtime.start()
    try:
        assert wait_until(lambda: len(events) >= 2)
        event, context = events[0]
        assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
        assert context.function_name == "fn-tick"
    finally:
        runtime.stop()
    assert runtime.invocations[0].handler_name == "tick" and runtime.invocations[0].ok


def test_a_schedule_fired_now_runs_its_handler_once_as_its_function_and_records_it():
    from contextlib import contextmanager

    from mlops.runtime import Schedule

    acting: list[str] = []
    calls: list[dict] = []

    @contextmanager
    def identity(name: str):
        acting.append(name)
        yield

    def handler(event, context):
        calls.append(event)
        return {"judged": context.function_name}

    schedule = Schedule("app-local-check", "check", handler, interval_s=3600)
    runtime = EventRuntime([], sqs=None, schedules=[schedule], identity=identity)
    runtime.start()
    try:
        assert runtime.fire("check") == {"judged": "app-local-check"}
        with pytest.raises(KeyError):
            runtime.fire("no-such-schedule")
    finally:
        runtime.stop()
    assert len(calls) == 1 and calls[0]["detail-type"] == "Scheduled Event"
    assert acting == ["check"]
    assert [(i.handler_name, i.ok) for i in runtime.invocations] == [("check", True)]


# --- concurrency: a function's batches run at once, up to its (reserved) concurrency -------------


class InFlight:
    """A handler wrapper that counts the invocations in flight (entered, not yet returned)."""

    def __init__(self, body):
        self.body, self.lock = body, threading.Lock()
        self.now = self.most = self.done = 0

    def __call__(self, event, context):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            return self.body(event)
        finally:
            with self.lock:
                self.now -= 1
                self.done += len(event["Records"])


def test_a_long_invocation_does_not_hold_up_the_batches_behind_it(sqs):
    """The first upload's invocation can only finish once a later one has: run one batch at a
    time, this waits out its bound and fails; run as Lambda scales, it passes."""
    name, url, _ = _queue(sqs, visibility=120)
    later_finished = threading.Event()
    saw_the_later_one: list[bool] = []

    def body(event):
        (record,) = event["Records"]
        if record["body"] == "large":
            saw_the_later_one.append(later_finished.wait(60))
        else:
            later_finished.set()

    _send(sqs, url, ["large"])
    runtime = _run(sqs, name, Recorder(body), concurrency=2)
    try:
        _send(sqs, url, ["small"])
        assert wait_until(lambda: saw_the_later_one)
        assert saw_the_later_one == [True]
        assert wait_until(lambda: _depth(sqs, url) == 0)
    finally:
        runtime.stop()


def test_a_function_runs_up_to_its_concurrency_at_once_and_never_more(sqs):
    name, url, _ = _queue(sqs, visibility=120)
    three_at_once = threading.Barrier(3)  # passes only when three invocations are in flight together

    def body(event):
        three_at_once.wait(60)

    handler = InFlight(body)
    _send(sqs, url, [str(i) for i in range(9)])
    runtime = _run(sqs, name, handler, concurrency=3)
    try:
        assert wait_until(lambda: handler.done == 9)
        assert handler.most == 3
        assert not three_at_once.broken
        assert all(i.ok for i in runtime.invocations)
    finally:
        runtime.stop()


def test_reserved_concurrency_one_never_runs_two_batches_at_once(sqs):
    import time

    name, url, _ = _queue(sqs)
    handler = InFlight(lambda event: time.sleep(0.02))  # a window in which a second one would show
    _send(sqs, url, [str(i) for i in range(12)])
    runtime = _run(sqs, name, handler, concurrency=1)
    try:
        assert wait_until(lambda: handler.done == 12)
        assert handler.most == 1
    finally:
        runtime.stop()


def test_each_concurrent_invocation_has_its_own_context_and_runs_as_its_function(sqs):
    import contextvars
    from contextlib import contextmanager

    name, url, _ = _queue(sqs, visibility=120)
    both_in = threading.Barrier(2)
    seen: list[tuple[str, str]] = []
    acting = contextvars.ContextVar("acting", default="nobody")  # as the local IAM's principal is kept

    @contextmanager
    def identity(function: str):
        token = acting.set(function)
        try:
            yield
        finally:
            acting.reset(token)

    def handler(event, context):
        both_in.wait(60)  # the two are in flight together
        seen.append((context.aws_request_id, acting.get()))

    sub = Subscription(
        function_name=f"serverless-mlops-local-{name}",
        handler_name=name,
        handler=handler,
        queue_name=name,
        concurrency=2,
    )
    _send(sqs, url, ["a", "b"])
    runtime = EventRuntime([sub], sqs, identity=identity)
    runtime.start()
    try:
        assert wait_until(lambda: len(seen) == 2)
        assert len({request for request, _ in seen}) == 2
        assert [principal for _, principal in seen] == [name, name]
    finally:
        runtime.stop()


def test_a_schedule_with_reserved_concurrency_one_runs_one_invocation_at_a_time(sqs):
    from mlops.runtime import Schedule

    first_in, release = threading.Event(), threading.Event()
    handler = InFlight(lambda event: (first_in.set(), release.wait(60)))
    schedule = Schedule("fn-judge", "judge", lambda event, context: handler({"Records": []}, context), 3600)
    runtime = EventRuntime([], sqs, schedules=[schedule])
    runtime.start()
    try:
        worker = threading.Thread(target=runtime.fire, args=("judge",))
        worker.start()
        assert first_in.wait(60)
        second = threading.Thread(target=runtime.fire, args=("judge",))
        second.start()
        release.set()
        worker.join(60)
        second.join(60)
        assert len(runtime.invocations) == 2
        assert handler.most == 1
    finally:
        runtime.stop()


def test_s3_notifications_carry_the_version_id_of_the_object_put(sqs, monkeypatch):
    from mlops.localcloud import s3_events_carry_version_ids

    s3_events_carry_version_ids(monkeypatch.setattr)
    endpoint = sqs.meta.endpoint_url
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    name, url, _ = _queue(sqs)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bodies = {}
    for bucket, versioned in ((f"{name}-versioned", True), (f"{name}-plain", False)):
        s3.create_bucket(Bucket=bucket)
        if versioned:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
            },
        )
        put = s3.put_object(Bucket=bucket, Key="incoming/d/a.csv", Body=b"x\n1\n")
        bodies[bucket] = put.get("VersionId")
    objects = {}

    def received_both():
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for record in json.loads(message["Body"]).get("Records", []):
                objects[record["s3"]["bucket"]["name"]] = record["s3"]["object"]
        return len(objects) == 2

    assert wait_until(received_both)
    assert bodies[f"{name}-versioned"]  # S3 gave the put a version id
    assert objects[f"{name}-versioned"]["versionId"] == bodies[f"{name}-versioned"]
    assert "versionId" not in objects[f"{name}-plain"]  # as S3: only for a versioned bucket
