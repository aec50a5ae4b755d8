"""Large uploads validated in parallel by the ingest function itself, through its own queue.

    notification ──> size >= split_bytes? ──> header + row-aligned ranges (chalicelib.rowranges)
                        │ one message per piece on the ingest queue: N shards + 1 hash of the bytes
                        v
    each piece ──> validate its rows (validation.partial) or hash the upload ──> result, create-only
               ──> piece done (atomic set add) ──> the last: merge ──> conclude as one pass would
                                                                (claim, publish, ledger entry)

At least once, like everything here: a redelivered piece finds its result written (create-only)
and only counts itself done again (a set: once); the piece that completes the set merges. A piece
redelivered after the merge finds the ledger entry and stops; one redelivered while the merge runs
merges too, writing the same keys (the ledger entry, create-only, is written once). A crash before
the last piece's merge leaves that piece's message to be redelivered, and it merges then. When the
merge cannot give the one-pass result (``partial.merge`` says why), the upload is validated again
in one pass, in the merging invocation.

The upload's sha256 (the content claim, lineage) is one more piece: a hash cannot be assembled from
the shards', so one invocation reads the whole object while the shards are checked.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, replace
from typing import Any

from chalicelib.ingest.exceptions import ObjectGone
from chalicelib.ingest.ports import Body, OpenedUpload
from chalicelib.ingest.service import IngestPorts, ShardPorts, _entry, _record, conclude, ingest
from chalicelib.ingest.uploads import Upload
from chalicelib.observability import logger
from chalicelib.rowranges import header_end_by_reads, next_row_start_by_reads, row_ranges
from chalicelib.s3events import ObjectCreated
from chalicelib.validation.capacity import Capacity
from chalicelib.validation.exceptions import ContractError, NoContract
from chalicelib.validation.layout import ObjectTags, shard_result_key
from chalicelib.validation.partial import Partial, merge, validate_shard
from chalicelib.validation.service import outcome_of, reference_for

IDENTITY_ROWS = Capacity().identity_rows
MESSAGE = "validation_shard"  # the key of a piece's message on the ingest queue
HASH = "sha256"
READ = 1024 * 1024
# Compressed uploads are one stream: never split (the validator names the others as unsupported).
MAGIC = (b"\x1f\x8b", b"PK\x03\x04", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


def ingest_upload(notification: dict[str, Any], ports: IngestPorts) -> dict[str, Any]:
    """``service.ingest``, but a large upload (by the notified size) is split into pieces first."""
    shards = ports.shards
    if shards is None or not shards.scale_out.splits(int(notification.get("size") or 0)):
        return ingest(notification, ports)
    event = ObjectCreated(
        **{k: v for k, v in notification.items() if k in ObjectCreated.__dataclass_fields__}
    )
    try:
        opened = ports.source.open(event.bucket, event.key, event.version_id, event.etag)
    except ObjectGone:
        return ingest(notification, ports)  # which records it missing
    entry = _entry(event, opened.version_id, opened.size)
    pinned = {**asdict(event), "version_id": opened.version_id}  # as service.ingest pins it
    answer = split_upload(entry, opened, pinned, ports, shards)
    if answer is not None:
        return answer
    opened.body.close()
    return ingest(notification, ports)


def is_piece(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get(MESSAGE), dict)


def split_upload(
    entry: Upload, opened: OpenedUpload, pinned: dict[str, Any], ports: IngestPorts, shards: ShardPorts
) -> dict[str, Any] | None:
    """Send the pieces of a large upload; None when it is validated in one pass instead (small,
    compressed, one range, no contract or over its size limit: one pass says so, as always)."""
    dataset = entry.dataset
    if dataset is None or not shards.scale_out.splits(opened.size) or ports.ledger.get(entry.upload_id):
        return None
    try:
        contract = ports.validation.contracts.get(dataset)
    except (NoContract, ContractError):
        return None
    if opened.size > contract.format.max_bytes:
        return None

    def read(start: int, length: int) -> bytes:
        return _read_all(
            ports.source.read_range(
                entry.bucket, entry.key, opened.version_id, start, min(opened.size, start + length)
            )
        )

    if read(0, 8).startswith(MAGIC):
        return None
    header_end = header_end_by_reads(opened.size, read)
    ranges = row_ranges(
        opened.size,
        header_end,
        shards.scale_out.shard_bytes,
        lambda p: next_row_start_by_reads(opened.size, p, read),
    )
    if len(ranges) < 2:
        return None
    opened.body.close()  # the pieces read it
    pieces = len(ranges) + 1
    common = {
        "notification": pinned,
        "upload_id": entry.upload_id,
        "size": opened.size,
        "pieces": pieces,
        "header_end": header_end,
        "split_at": time.time(),
    }
    for index, (start, end) in enumerate(ranges):
        shards.queue.send({MESSAGE: {**common, "index": index, "start": start, "end": end}})
    shards.queue.send({MESSAGE: {**common, "index": len(ranges), "kind": HASH}})
    logger.info(
        "upload split", extra={"upload_id": entry.upload_id, "size": opened.size, "shards": len(ranges)}
    )
    return {"upload_id": entry.upload_id, "created": False, "status": "split", "shards": len(ranges)}


def validate_piece(message: dict[str, Any], ports: IngestPorts) -> dict[str, Any]:
    """One piece of a split upload: its result (once), then the merge if it is the last."""
    piece = message[MESSAGE]
    upload_id, index, pieces = str(piece["upload_id"]), int(piece["index"]), int(piece["pieces"])
    notification = dict(piece["notification"])
    answer = {"upload_id": upload_id, "created": False, "piece": index}
    if ports.ledger.get(upload_id) is not None:
        return {**answer, "status": "recorded"}  # merged before: a late redelivery
    entry = _entry_of(notification, upload_id, int(piece["size"]))
    assert entry.dataset is not None and ports.shards is not None
    outputs = ports.validation.outputs
    key = shard_result_key(entry.dataset, upload_id, index)
    if outputs.get_bytes(key) is None:
        contract = ports.validation.contracts.get(entry.dataset)
        tags = ObjectTags(entry.dataset, contract.classification, "profile")
        outputs.create_bytes(key, _piece_result(piece, entry, contract, ports), tags)
    if ports.shards.tally.piece_done(upload_id, index) < pieces:
        return {**answer, "status": "piece done"}
    logger.thread_safe_append_keys(upload_id=upload_id)
    try:
        return _merge(piece, entry, notification, ports)
    finally:
        logger.thread_safe_remove_keys(["upload_id"])


def _piece_result(piece: dict[str, Any], entry: Upload, contract: Any, ports: IngestPorts) -> bytes:
    source, version = ports.source, entry.version_id
    if piece.get("kind") == HASH:
        body = source.read_range(entry.bucket, entry.key, version, 0, entry.size)
        sha = hashlib.sha256()
        try:
            while data := body.read(READ):
                sha.update(data)
        finally:
            body.close()
        return json.dumps({HASH: sha.hexdigest()}).encode()
    header = _read_all(source.read_range(entry.bucket, entry.key, version, 0, int(piece["header_end"])))
    start, end = int(piece["start"]), int(piece["end"])
    body = source.read_range(entry.bucket, entry.key, version, start, end)
    try:
        partial = validate_shard(_Joined(header, body), contract, int(piece["index"]), size=end - start)
    finally:
        body.close()
    partial.contract_version = contract.version
    return partial.to_bytes()


def _merge(
    piece: dict[str, Any], entry: Upload, notification: dict[str, Any], ports: IngestPorts
) -> dict[str, Any]:
    assert entry.dataset is not None
    outputs = ports.validation.outputs
    pieces = int(piece["pieces"])
    contract = ports.validation.contracts.get(entry.dataset)
    partials, rows, sha256 = [], 0, ""
    for index in range(pieces):  # one stored result in memory at a time, beside what is kept of them
        body = outputs.get_bytes(shard_result_key(entry.dataset, entry.upload_id, index))
        if body is None:
            raise RuntimeError(
                f"upload {entry.upload_id}: piece {index}'s result is missing although counted done"
            )
        if index == pieces - 1:
            sha256 = str(json.loads(body)[HASH])
            break
        partial = Partial.from_bytes(body)
        rows += partial.rows
        if rows > IDENTITY_ROWS:  # past it the upload has no row digest: the shards' are not kept
            partial.drop_digest()
        partials.append(partial)
        del body
    reference = reference_for(contract, entry.upload_id, outputs)
    seconds = max(0.0, time.time() - float(piece.get("split_at") or time.time()))
    merged = merge(contract, partials, reference=reference, seconds=seconds, consume=True)
    reason = merged.one_pass
    if merged.result is not None and any(p.contract_version != contract.version for p in partials):
        reason = "the contract changed while the shards were checked"
    if merged.result is None or reason is not None:
        logger.info(
            "split upload validated in one pass", extra={"upload_id": entry.upload_id, "reason": reason}
        )
        return ingest(notification, ports)
    outcome = outcome_of(merged.result, contract, reference)
    upload = conclude(replace(entry, sha256=sha256), outcome, notification, ports, finish_holder=True)
    return _record(ports.ledger, upload)


def _entry_of(notification: dict[str, Any], upload_id: str, size: int) -> Upload:
    event = ObjectCreated(
        **{k: v for k, v in notification.items() if k in ObjectCreated.__dataclass_fields__}
    )
    entry = _entry(event, event.version_id, size)
    assert entry.upload_id == upload_id, "a piece's upload id derives from its notification"
    return entry


def _read_all(body: Body) -> bytes:
    try:
        return body.read()
    finally:
        body.close()


class _Joined:
    """The header line, then a shard's rows: what the validator reads for one shard."""

    def __init__(self, head: bytes, body: Body) -> None:
        self._head = head
        self._body = body

    def read(self, n: int = -1, /) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._body.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._body.read(n) if n is not None and n >= 0 else self._body.read()
