"""Datasets: uploads arriving (the ingest queue), the uploads ledger and revocations, data contracts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice.app import SQSEvent

from chalicelib import bootstrap
from chalicelib.entrypoints.auth import CHANGES, READS, caller
from chalicelib.entrypoints.blueprint import Area, dataset_name, json_body
from chalicelib.entrypoints.blueprint import upload_id as _upload_id  # the routes' parameter is upload_id
from chalicelib.errors import InvalidInput, NotFound
from chalicelib.http import Change

if TYPE_CHECKING:
    from chalicelib.validation import Contract

bp = Area(__name__)
# Queue names come from the stage's variables at import: `chalice deploy --stage X` wires stage X.
settings = bootstrap.settings()


# One upload an invocation: each gets the function's whole timeout, within which the validator's
# time budget (validation.capacity.Capacity.seconds) leaves room to hash, copy and report.
@bp.on_sqs_message(queue=settings.ingest_queue, batch_size=1, name="ingest_upload")
def ingest_upload(event: SQSEvent) -> dict[str, Any]:
    """S3 notifications of uploads under incoming/ -> validation -> uploads ledger; of outcomes
    uploads under outcomes/ -> checked, stored, bad rows quarantined (monitoring)."""
    from chalicelib.ingest.handler import handle_ingest_batch

    return handle_ingest_batch(
        event.to_dict(), event.context, bootstrap.ingest_once(), routes={OUTCOMES_PREFIX: _ingest_outcomes}
    )


OUTCOMES_PREFIX = "outcomes/"  # chalicelib.monitoring.outcomes.OUTCOMES_PREFIX (light: no import here)


def _ingest_outcomes(notification: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.monitoring.outcomes_service import ingest_upload as ingest_outcomes

    return ingest_outcomes(notification, bootstrap.outcome_upload_ports())


@bp.route("/uploads/{upload_id}", methods=["GET"], authorizer=READS)
def get_upload(upload_id: str) -> dict[str, Any]:
    """The upload's ledger entry (a token-like part of its key is masked: see the blueprint)."""
    upload = bootstrap.uploads().get(_upload_id(upload_id))
    if upload is None:
        raise NotFound(f"no upload with id {upload_id!r}")
    return upload.as_item()


@bp.route("/uploads/{upload_id}/models", methods=["GET"], authorizer=READS)
def get_upload_models(upload_id: str) -> dict[str, Any]:
    """Every model version trained or evaluated on the upload (lineage), and its revocation if any."""
    from chalicelib.revocation.service import models_of_upload

    return models_of_upload(bootstrap.uploads(), bootstrap.registry(), _upload_id(upload_id))


@bp.route(
    "/uploads/{upload_id}/revoke",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=CHANGES,
    body=Change,
)
def revoke_upload(upload_id: str) -> dict[str, Any]:
    """Take a valid upload out of training for good, with a reason (chalicelib/revocation/service.py).
    404 unknown upload; 409 not valid, or revoked already."""
    from chalicelib.revocation.service import revoke

    reason = json_body(bp, Change).reason
    return revoke(bootstrap.revocation_ports(), _upload_id(upload_id), caller(bp), reason)


class ContractDocument:
    """The body of ``PUT /datasets/{name}/contract``: a data contract, checked by ``Contract.parse``
    (every level refuses unknown fields, naming them and the known ones; docs/contracts.md).
    Imported on use: the validation stage loads numpy."""

    @classmethod
    def parse(cls, doc: Any) -> Contract:
        from chalicelib.validation import Contract

        return Contract.parse(doc)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        from chalicelib.validation.contract import FIELDS

        return FIELDS


@bp.route(
    "/datasets/{name}/contract",
    methods=["PUT"],
    content_types=["application/json"],
    authorizer=CHANGES,
    body=ContractDocument,
)
def put_contract(name: str) -> dict[str, Any]:
    """Store a dataset's data contract; a broken contract is refused with the field named."""
    from chalicelib.validation import ContractError
    from chalicelib.validation.service import store_contract

    dataset_name(name)
    try:
        contract = json_body(bp, ContractDocument)
    except ContractError as exc:
        raise InvalidInput(f"invalid contract: {exc}") from exc
    if contract.dataset != name:
        raise InvalidInput(f"dataset: the contract is for {contract.dataset!r} but was sent to {name!r}")
    bootstrap.contract_sections()
    try:
        key = store_contract(bootstrap.contracts(), contract)
    except ContractError as exc:
        raise InvalidInput(f"invalid contract: {exc}") from exc
    return {"dataset": name, "version": contract.version, "key": key}


@bp.route("/datasets/{name}/contract", methods=["GET"], authorizer=READS)
def get_contract(name: str) -> dict[str, Any]:

    return bootstrap.contracts().get(dataset_name(name)).to_dict()
