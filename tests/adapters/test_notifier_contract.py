"""The notifier's contract, held by both: in memory and SNS (moto, an SQS queue subscribed to the
stage's topic): every known event delivered with its detail, unknown types refused, an unreachable
topic answered with False (never an exception: the change it announces has committed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib import notify
from chalicelib.adapters.aws.notifier import SnsNotifier
from chalicelib.adapters.memory.notifier import MemoryNotifier
from chalicelib.notify import Notifier

Inbox = Callable[[], list[tuple[str, dict[str, Any]]]]


@pytest.fixture(params=["memory", "moto"])
def channel(request: pytest.FixtureRequest) -> tuple[Notifier, Inbox, Notifier]:
    """A notifier, the inbox of what reached its subscribers, and a notifier whose topic is gone."""
    if request.param == "memory":
        memory = MemoryNotifier()
        return memory, lambda: memory.messages, MemoryNotifier(reachable=False)
    from dataclasses import replace

    from mlops.demo import subscribe_inbox

    settings = request.getfixturevalue("aws")
    read = subscribe_inbox(settings, "contract-inbox")

    def inbox() -> list[tuple[str, dict[str, Any]]]:
        return [(m.pop("type"), {k: v for k, v in m.items() if k != "stage"}) for m in read()]

    return SnsNotifier(settings), inbox, SnsNotifier(replace(settings, notifications_topic="no-such-topic"))


def test_every_event_type_is_delivered_with_its_detail_in_order(channel):
    notifier, inbox, _ = channel
    for i, detail_type in enumerate(notify.DETAIL_TYPES):
        assert notifier.publish(detail_type, {"model": "m", "version": i, "reason": "because"}) is True
    assert inbox() == [
        (detail_type, {"model": "m", "version": i, "reason": "because"})
        for i, detail_type in enumerate(notify.DETAIL_TYPES)
    ]


def test_an_unknown_type_is_refused_before_anything_is_sent(channel):
    notifier, inbox, _ = channel
    with pytest.raises(ValueError, match="unknown notification"):
        notifier.publish("Model exploded", {"model": "m"})
    assert inbox() == []


def test_an_unreachable_topic_is_answered_false_not_raised(channel):
    _, inbox, unreachable = channel
    assert unreachable.publish(notify.MODEL_PROMOTED, {"model": "m", "to_version": 2}) is False
    assert inbox() == []
