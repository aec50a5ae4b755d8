"""The queue port the validation stage announces on: one suite, run against the in-memory and the
SQS (moto) implementation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.adapters.memory.queues import MemoryQueue
from chalicelib.validation.ports import Queue


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> tuple[Queue, Callable[[], list[dict[str, Any]]]]:
    if request.param == "memory":
        queue = MemoryQueue()
        return queue, queue.receive
    import boto3

    from chalicelib.adapters.aws.queues import SqsQueue

    settings = request.getfixturevalue("aws_module")
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=settings.retrain_queue)["QueueUrl"]

    def receive() -> list[dict[str, Any]]:
        found = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for m in messages:
                found.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return found

    receive()  # the stack is shared by the module's tests: start from an empty queue
    return SqsQueue(settings.retrain_queue), receive


def test_a_sent_body_arrives_as_the_same_json(
    backend: tuple[Queue, Callable[[], list[dict[str, Any]]]],
) -> None:
    queue, receive = backend
    body = {
        "event": "data.validated",
        "dataset": "iris",
        "rows": 100,
        "drift": None,
        "drifted_features": ["a"],
    }
    queue.send(body)
    assert receive() == [body]


def test_every_message_sent_arrives_once(backend: tuple[Queue, Callable[[], list[dict[str, Any]]]]) -> None:
    queue, receive = backend
    for i in range(5):
        queue.send({"n": i})
    assert sorted(m["n"] for m in receive()) == [0, 1, 2, 3, 4]


def test_a_body_that_is_not_json_is_refused_before_anything_is_sent(
    backend: tuple[Queue, Callable[[], list[dict[str, Any]]]],
) -> None:
    queue, receive = backend
    with pytest.raises(TypeError):
        queue.send({"when": object()})
    assert receive() == []
