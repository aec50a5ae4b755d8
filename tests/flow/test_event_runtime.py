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
    name, url, _ = _queue(sqs, visibility=2, max_receive=10)

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
    name, url, _ = _queue(sqs, visibility=2, max_receive=10)
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
