"""Which uploads can be revoked: the rule every uploads ledger applies (``UploadLedger.revoke``).

Only a ``valid`` upload reached training data (a validated copy, a row digest, a retrain
announcement); an upload in any other status was quarantined, absorbed as a duplicate, or never
read. Revoking is a recorded decision, never a deletion: the entry keeps who, when and why, and the
upload joins its dataset's revoked set, which snapshots, holdouts and row identity leave out.
"""

from __future__ import annotations

from chalicelib.ingest.exceptions import NotRevocable, UploadNotFound
from chalicelib.ingest.uploads import Upload


def check_revocable(upload_id: str, upload: Upload | None) -> Upload:
    """The entry, if it can be revoked (or was already); ``UploadNotFound`` / ``NotRevocable`` else."""
    if upload is None:
        raise UploadNotFound(f"no upload with id {upload_id!r}")
    if upload.status != "valid" or not upload.dataset:
        what = {
            "invalid": "it was quarantined",
            "duplicate": f"it duplicates upload {upload.duplicate_of}: revoke that one",
            "missing": "its object was gone before it could be read",
            "unroutable": "it is not under incoming/<dataset>/",
            "ignored": "it was put outside incoming/ and never read",
        }.get(upload.status, f"its status is {upload.status}")
        raise NotRevocable(
            f"upload {upload_id} is {upload.status}: only a valid upload reaches training data, so only "
            f"a valid one can be revoked ({what})"
        )
    return upload
