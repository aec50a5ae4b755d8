"""Ingest: every upload under ``incoming/`` is validated and recorded once in the uploads ledger."""

from chalicelib.ingest.ports import ContentClaim, UploadLedger, UploadSource
from chalicelib.ingest.uploads import Upload, dataset_of, upload_id_for

__all__ = ["ContentClaim", "Upload", "UploadLedger", "UploadSource", "dataset_of", "upload_id_for"]
