"""The validation and ingest stages on in-memory adapters: one data bucket, the contracts, the
validation outputs, the retrain queue and the uploads ledger, wired as bootstrap wires the AWS ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.adapters.memory.contracts import MemoryContractStore
from chalicelib.adapters.memory.objects import MemoryObjects
from chalicelib.adapters.memory.queues import MemoryQueue
from chalicelib.adapters.memory.upload_source import MemoryUploadSource
from chalicelib.adapters.memory.uploads_ledger import MemoryUploadLedger
from chalicelib.adapters.memory.validation_outputs import MemoryValidationStore
from chalicelib.ingest.service import IngestPorts, ingest
from chalicelib.ingest.uploads import Upload, upload_id_for
from chalicelib.validation.service import ValidationPorts

BUCKET = "data"


@dataclass
class World:
    objects: MemoryObjects = field(default_factory=MemoryObjects)
    queue: MemoryQueue = field(default_factory=MemoryQueue)
    ledger: MemoryUploadLedger = field(default_factory=MemoryUploadLedger)

    def __post_init__(self) -> None:
        self._uploads = 0
        self.contracts = MemoryContractStore(self.objects, BUCKET)
        self.outputs = MemoryValidationStore(self.objects, BUCKET)
        self.source = MemoryUploadSource(self.objects)
        self.validation = ValidationPorts(
            contracts=self.contracts, outputs=self.outputs, retrain_queue=self.queue
        )
        self.ports = IngestPorts(ledger=self.ledger, source=self.source, validation=self.validation)

    def put(self, key: str, data: bytes) -> dict[str, Any]:
        """Upload an object; the notification S3 sends for it (as the batch handler passes it on)."""
        stored = self.objects.put(BUCKET, key, data)
        assert stored is not None
        self._uploads += 1
        return {
            "bucket": BUCKET,
            "key": key,
            "size": len(data),
            "etag": stored.etag,
            "version_id": stored.version_id,
            "event_name": "ObjectCreated:Put",
            # One second after the previous upload: S3 event times order the uploads.
            "event_time": f"2026-11-30T12:{self._uploads // 60 % 60:02d}:{self._uploads % 60:02d}.000Z",
            "sequencer": None,
            "version": stored.version_id,
        }

    def ingest(self, notification: dict[str, Any]) -> dict[str, Any]:
        return ingest(notification, self.ports)

    def upload(self, key: str, data: bytes) -> Upload | None:
        """Upload, ingest, and return the ledger entry."""
        notification = self.put(key, data)
        self.ingest(notification)
        return self.ledger.get(upload_id_for(BUCKET, key, notification["version_id"]))

    def json(self, key: str) -> Any:
        return self.outputs.get_json(key)

    def tags(self, key: str) -> dict[str, str]:
        stored = self.objects.get(BUCKET, key)
        assert stored is not None, f"nothing at {key}"
        return stored.tags

    def keys(self, prefix: str) -> list[str]:
        return self.objects.keys(BUCKET, prefix)
