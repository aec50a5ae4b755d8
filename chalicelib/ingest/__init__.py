"""Ingest: record every upload once in the uploads ledger."""

from chalicelib.ingest.handler import handle_ingest_batch, ingest
from chalicelib.ingest.store import UploadLedger
from chalicelib.ingest.uploads import Upload, dataset_of, upload_id_for

__all__ = ["Upload", "UploadLedger", "dataset_of", "handle_ingest_batch", "ingest", "upload_id_for"]
