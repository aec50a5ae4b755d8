"""serverless-mlops: the Chalice app. Thin handlers; the logic lives in chalicelib."""

from __future__ import annotations

from typing import Any

from chalice import Chalice, NotFoundError
from chalice.app import SQSEvent

from chalicelib import observability
from chalicelib.ingest import UploadLedger, handle_ingest_batch
from chalicelib.settings import Settings

app = Chalice(app_name="serverless-mlops")
# Names are derived from MLOPS_STAGE at import time: `chalice deploy --stage X` imports this
# module with stage X's environment variables, which is how each stage's queue gets wired.
settings = Settings.from_env()
# Middleware first: Chalice attaches it to the handlers defined after it.
observability.install(app)


@app.on_sqs_message(
    queue=settings.ingest_queue, batch_size=10, maximum_batching_window_in_seconds=1, name="ingest_upload"
)
def ingest_upload(event: SQSEvent) -> dict[str, Any]:
    """S3 notifications of uploads under incoming/ -> uploads ledger."""
    return handle_ingest_batch(event.to_dict(), event.context)


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok", "stage": Settings.from_env().stage}


@app.route("/uploads/{upload_id}", methods=["GET"])
def get_upload(upload_id: str) -> dict[str, Any]:
    upload = UploadLedger(Settings.from_env().uploads_table).get(upload_id)
    if upload is None:
        raise NotFoundError(f"no upload with id {upload_id!r}")
    return upload.as_item()
