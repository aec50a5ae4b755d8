"""The local cloud's DynamoDB gives reads the isolation the real service gives them.

moto applies an update to a new item in two steps (it stores the key alone, then runs the update
expression on it) and a transaction item by item. DynamoDB never shows a reader an item half-written
or a transaction half-applied. A flow test once read the champion pointer between moto's two steps
and crashed on a pointer with no version (``KeyError: 'version'``); these tests hold a promotion at
exactly that point and read meanwhile.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.dynamodb.models.table import Table

from chalicelib.adapters.aws.registry import DynamoRegistry

HOLD = 2.0  # seconds a reader is given to finish while the writer is held; no verdict depends on it


def test_a_reader_never_sees_the_champion_pointer_half_written(aws, atomic_writes, monkeypatch):
    registry = DynamoRegistry(aws.registry_table, aws.audit_table)
    version, _ = registry.register_version("m", {"run_id": "run-1"})
    registry.set_status("m", version, "approved", by="gates", reason="every gate passed")

    inside, release = threading.Event(), threading.Event()
    original = Table.put_item

    def put_item(self: Table, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        stored = original(self, item_attrs, *args, **kwargs)
        # moto's update of a new item: the key alone is stored, the update expression runs next.
        if set(item_attrs) == {"pk", "sk"} and item_attrs["sk"] == {"S": "champion"}:
            inside.set()
            release.wait(timeout=60)
        return stored

    monkeypatch.setattr(Table, "put_item", put_item)
    outcomes: dict[str, Any] = {}

    def promote() -> None:
        try:
            outcomes["promotion"] = registry.promote("m", version, "alice", "first", expected_champion=None)
        finally:
            inside.set()  # a promotion that failed before the pointer fails the assertions below

    def read() -> None:
        try:
            outcomes["read"] = registry.champion("m")
        except Exception as exc:  # what the reader saw, for the assertion below
            outcomes["read"] = exc
        finally:
            read_done.set()

    read_done = threading.Event()
    writer = threading.Thread(target=promote)
    writer.start()
    assert inside.wait(timeout=60), "the promotion never wrote the champion pointer"
    reader = threading.Thread(target=read)
    reader.start()
    # Isolated: the read waits for the promotion, so it cannot finish while the writer is held.
    # Either way the writer is released next; the verdict is what the reader saw, not when.
    read_done.wait(timeout=HOLD)
    release.set()
    writer.join(timeout=60)
    reader.join(timeout=60)
    assert outcomes["promotion"]["to_version"] == version
    assert outcomes["read"] == version, f"the reader saw {outcomes['read']!r}"
