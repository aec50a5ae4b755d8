"""Any key goes through the ingest service end to end (in-memory adapters, which refuse what S3
refuses: keys over 1,024 bytes, metadata that is not ASCII or over 2 KB).

Keys are generated: any Unicode (spaces, '+', '%', emoji, combining marks, controls), in NFC, NFD or
as drawn, short or padded to S3's limit. Each arrives as S3 notifies it (URL-encoded) and must come
out kept exactly: in the ledger, in the report, in the copy's lineage metadata; a redelivery has no
effect; the same bytes under the key's other normal form are a duplicate of it, under its own key.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict
from urllib.parse import quote_plus

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.ingest.uploads import dataset_of
from chalicelib.s3events import object_created_events
from chalicelib.validation import Contract
from chalicelib.validation.layout import MAX_KEY_BYTES, s3_write_problem, source_key_of
from tests.service.world import BUCKET, World
from tests.support import GOOD, IRIS

BODIES = {"valid": GOOD, "invalid": b"a,label\n-1,maybe\n2.5,no\n"}
CHARACTERS = st.one_of(
    st.characters(exclude_categories=("Cs",)),
    st.sampled_from(
        [" ", "+", "%", "%2F", "/", "&", "?", "#", "é", "e\u0301", "🩺", "👩‍🔬", "東京", "\u200b"]
    ),
)


@st.composite
def upload_keys(draw: st.DrawFn) -> str:
    """``incoming/<folder>/<name>``: a dataset's folder (iris) most of the time, any text otherwise."""
    other = st.lists(CHARACTERS, min_size=1, max_size=8).map("".join)
    folder = draw(st.one_of(st.just("iris"), st.just("iris"), other))
    name = "".join(draw(st.lists(CHARACTERS, min_size=1, max_size=30)))
    form = draw(st.sampled_from([None, "NFC", "NFD"]))
    if form:
        name = unicodedata.normalize(form, name)
    key = f"incoming/{folder}/{name}"
    if draw(st.booleans()):  # towards S3's 1,024 bytes
        pad = draw(CHARACTERS) or "x"
        room = MAX_KEY_BYTES - len(key.encode())
        key += pad * (draw(st.integers(0, max(0, room))) // max(1, len(pad.encode())))
    while len(key.encode()) > MAX_KEY_BYTES:
        key = key[:-1]
    return key


def s3_notification(world: World, key: str, body: bytes) -> dict[str, object]:
    """Put the object; the notification as the handler passes it on, decoded from S3's JSON."""
    put = world.put(key, body)
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-11-30T12:00:00.000Z",
        "s3": {
            "bucket": {"name": BUCKET},
            "object": {
                "key": quote_plus(key),
                "size": len(body),
                "eTag": put["etag"],
                "versionId": put["version_id"],
            },
        },
    }
    (event,) = object_created_events(json.dumps({"Records": [record]}))
    return {**asdict(event), "version": event.version_id}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=upload_keys(), kind=st.sampled_from(sorted(BODIES)))
def test_any_key_goes_through_and_is_kept_exactly(key: str, kind: str) -> None:
    world = World()
    world.contracts.put(Contract.parse(IRIS))
    notification = s3_notification(world, key, BODIES[kind])
    assert notification["key"] == key
    answer = world.ingest(notification)
    assert answer["created"] is True
    entry = world.ledger.get(answer["upload_id"])
    assert entry is not None and entry.key == key
    dataset, problem = dataset_of(key)
    if dataset is None:
        assert entry.status == "unroutable" and problem is not None and entry.problem == problem
        assert world.keys("reports/") == []
        return
    status = kind if dataset == "iris" else "invalid"  # another folder has no contract: NO_CONTRACT
    assert entry.status == status
    report = world.json(entry.report_key or "")
    assert report["source"]["key"] == key and report["upload_id"] == entry.upload_id
    copied = world.objects.get(BUCKET, entry.output_key or "")
    assert copied is not None and copied.body == BODIES[kind]
    assert s3_write_problem(entry.output_key or "", copied.metadata) is None
    assert source_key_of(copied.metadata) in (key, None)
    if source_key_of(copied.metadata) is None:
        assert len(key.encode()) > 500  # left out only when too long for S3's 2 KB of metadata
    if status == "valid":
        (announced,) = world.queue.receive()
        assert announced["upload_id"] == entry.upload_id

    # a redelivery has no effect
    objects = world.keys("")
    assert world.ingest(notification) == {
        "upload_id": entry.upload_id,
        "created": False,
        "status": "recorded",
    }
    assert world.keys("") == objects and len(world.ledger.scan()) == 1

    # the same bytes under the key's other normal form: another key, a duplicate of this upload
    twin = unicodedata.normalize("NFD" if unicodedata.is_normalized("NFC", key) else "NFC", key)
    if twin != key and len(twin.encode()) <= MAX_KEY_BYTES:
        second = world.ledger.get(world.ingest(s3_notification(world, twin, BODIES[kind]))["upload_id"])
        assert second is not None and second.key == twin
        assert second.status == "duplicate" and second.duplicate_of == entry.upload_id
