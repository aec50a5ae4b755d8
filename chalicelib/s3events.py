"""S3 ObjectCreated notifications as they arrive through SQS.

Real S3 and moto both deliver the notification JSON as the SQS message body. The first message
after a notification is configured is an ``s3:TestEvent`` with no ``Records``. Keys are URL-encoded
UTF-8 with '+' for a space (S3 keeps '/', moto's ``quote_plus`` encodes it too): ``unquote_plus``
gives the exact key back, whatever it holds (any Unicode, NFC or NFD as uploaded, '+', '%'), and a
key that does not decode as UTF-8 makes the notification malformed rather than naming another
object. moto's records are thinner than AWS's (no ``sequencer`` for example), so this parser relies
only on the fields both send.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote_plus

from chalicelib.errors import MlopsError


class MalformedNotification(MlopsError, ValueError):
    """The message body is not an S3 event notification."""


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None
    event_name: str
    event_time: str
    sequencer: str | None = None


def object_created_events(body: str) -> list[ObjectCreated]:
    """The ObjectCreated records of one S3 notification; [] for test events.

    Raises MalformedNotification for a body that is not an S3 notification, so the message fails,
    is retried and ends in the dead-letter queue where a person can see it.
    """
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, TypeError) as exc:
        raise MalformedNotification(f"message body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise MalformedNotification("message body is not a JSON object")
    if payload.get("Event") == "s3:TestEvent":
        return []
    records = payload.get("Records")
    if not isinstance(records, list):
        raise MalformedNotification("message body has no 'Records' list (not an S3 notification)")
    events = []
    for index, record in enumerate(records):
        try:
            if record.get("eventSource") != "aws:s3" or not str(record.get("eventName", "")).startswith(
                "ObjectCreated:"
            ):
                continue
            s3 = record["s3"]
            obj = s3["object"]
            events.append(
                ObjectCreated(
                    bucket=s3["bucket"]["name"],
                    key=_key(obj["key"], index),
                    size=int(obj.get("size", 0)),
                    etag=str(obj.get("eTag") or obj.get("etag") or "").strip('"'),
                    version_id=obj.get("versionId") or None,
                    event_name=record["eventName"],
                    event_time=record.get("eventTime", ""),
                    sequencer=obj.get("sequencer"),
                )
            )
        except MalformedNotification:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise MalformedNotification(f"record {index} is missing {exc}") from exc
    return events


def _key(encoded: str, index: int) -> str:
    try:
        return unquote_plus(encoded, errors="strict")
    except UnicodeDecodeError as exc:
        raise MalformedNotification(f"record {index}: the key is not URL-encoded UTF-8 ({exc})") from exc
