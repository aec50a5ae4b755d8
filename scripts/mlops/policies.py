"""The IAM policy of each Lambda function: only the actions it uses, on only its resources.

``.chalice/config.json`` sets ``autogen_policy: false`` for the deployed stages and names one
policy file per function and stage, ``.chalice/policy-<stage>-<function>.json``. Those files are
rendered from this module (``mlops policies``; ``--check`` fails if a file is stale), so the
statements are written once, with the reason for each, and the stage's resource names come from
``chalicelib.settings``. A test renders them and compares, runs parliament on every file, and fails
when a function of ``app.py`` has no policy here.

Conventions:

* Every ARN names the account and the region it is deployed to (``render(..., account=,
  region=)``), filled in where they are known, since IAM policy variables cannot stand for them (the
  IAM User Guide, "Where you can use policy variables": only in the resource part of an ARN, after
  the fifth colon, never the service, region or account):

  - ``make deploy`` renders the stage's files for the caller's account and region while ``chalice
    deploy`` reads them, and puts the committed ones back (``scoped_files``);
  - the packaged template names ``${AWS::AccountId}`` and ``${AWS::Region}`` of the stack
    (``for_cloudformation``, in ``mlops.package``'s merge template);
  - the local cloud renders them for its account and region (``mlops.localiam``), whose check
    takes a call's region from its client and its account from the queue URL or ARN it names;
  - the committed files have ``*`` for both, so that a plain ``chalice deploy`` works in any
    account: the names (``<prefix>-<stage>-...``) pin the resources there.

  The statements below write ``*`` for both; ``render`` fills them in. S3 ARNs have neither.
* The stage's KMS key has a random id, so key statements name ``key/*`` and pin the key by its tag
  (``aws:ResourceTag/mlops-key = <prefix>-<stage>``, set in ``infra/template.yaml``).
* ``Resource: "*"`` appears once, for X-Ray (``PutTraceSegments``/``PutTelemetryRecords`` have no
  resource-level permissions), and only in stages that trace.
* Reading a missing S3 key answers 404 only to a caller allowed to list the bucket (403
  otherwise), and the code relies on ``NoSuchKey``; so each reader may list, but only under the
  prefixes it reads.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from chalicelib.settings import Settings, dlq_name
from mlops import PROJECT_DIR

CHALICE_DIR = PROJECT_DIR / ".chalice"
DEPLOYED_STAGES = ("dev", "prod")
PARTITION = "aws"  # the commercial partition; aws-cn / aws-us-gov would need their own files
ANY = "*"  # an ARN's account or region in the committed files

Statement = dict[str, Any]


def policy_file(stage: str, function: str) -> str:
    """The file name, relative to ``.chalice/`` (what ``iam_policy_file`` holds)."""
    return f"policy-{stage}-{function}.json"


# --- ARNs -------------------------------------------------------------------------------------------


def _objects(bucket: str, *prefixes: str) -> list[str]:
    return [f"arn:{PARTITION}:s3:::{bucket}/{p}*" for p in prefixes]


def _bucket(bucket: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}"


def _table(name: str) -> str:
    return f"arn:{PARTITION}:dynamodb:*:*:table/{name}"


def _queue(name: str) -> str:
    return f"arn:{PARTITION}:sqs:*:*:{name}"


# --- building blocks --------------------------------------------------------------------------------


def _sid(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", " ").replace("_", " ").split())


def _allow(sid: str, actions: Iterable[str], resources: str | list[str], **condition: Any) -> Statement:
    statement: Statement = {
        "Sid": _sid(sid),
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": resources if isinstance(resources, str) else sorted(resources),
    }
    if condition:
        statement["Condition"] = condition
    return statement


def _logs(function_name: str) -> list[Statement]:
    group = f"arn:{PARTITION}:logs:*:*:log-group:/aws/lambda/{function_name}"
    return [
        # The group exists already (deploy and package create it with its retention); Lambda still
        # asks to create it on a cold start and copes with "already exists".
        _allow("WriteOwnLogGroup", ["logs:CreateLogGroup"], group),
        _allow("WriteOwnLogStreams", ["logs:CreateLogStream", "logs:PutLogEvents"], f"{group}:*"),
    ]


# The token authorizer only reads (decrypts) token parameters; every other function also writes
# encrypted objects, messages or notifications (GenerateDataKey).
KEY_ACTIONS: dict[str, tuple[str, ...]] = {
    "token_authorizer": ("kms:Decrypt",),
}


def _key(s: Settings, function: str) -> Statement:
    # Buckets, queues, tables, the topic and the token parameters are encrypted with the stage key.
    return _allow(
        "UseStageKey",
        KEY_ACTIONS.get(function, ("kms:Decrypt", "kms:GenerateDataKey")),
        f"arn:{PARTITION}:kms:*:*:key/*",
        StringEquals={"aws:ResourceTag/mlops-key": f"{s.prefix}-{s.stage}"},
    )


def _consume(queue: str) -> Statement:
    # What Lambda's SQS event source mapping does with the function's role.
    return _allow(
        "ConsumeOwnQueue",
        ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
        _queue(queue),
    )


def _list(sid: str, bucket: str, *prefixes: str) -> Statement:
    return _allow(
        sid, ["s3:ListBucket"], _bucket(bucket), StringLike={"s3:prefix": [f"{p}*" for p in prefixes]}
    )


def _kickoff(s: Settings) -> list[Statement]:
    """Evaluate a retrain trigger and start at most one run (chalicelib/training/service.py)."""
    return [
        _allow(
            "ReadContractsAndData",
            ["s3:GetObject"],
            _objects(s.data_bucket, "contracts/", "validated/", "manifests/"),
        ),
        _list("ListContractsAndData", s.data_bucket, "contracts/", "validated/", "manifests/"),
        # Snapshot manifests are written create-only and tagged.
        _allow(
            "WriteManifests", ["s3:PutObject", "s3:PutObjectTagging"], _objects(s.data_bucket, "manifests/")
        ),
        _allow(
            "RunsLockAndLedger",
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            _table(s.runs_table),
        ),
        # The dataset's revoked uploads (one item of the uploads ledger): left out of the snapshot.
        _allow("ReadRevokedUploads", ["dynamodb:GetItem"], _table(s.uploads_table)),
        _allow(
            "SubmitTrainingJob",
            ["batch:SubmitJob", "batch:TagResource"],
            [
                f"arn:{PARTITION}:batch:*:*:job-queue/{s.spot_job_queue}",
                f"arn:{PARTITION}:batch:*:*:job-queue/{s.ondemand_job_queue}",
                f"arn:{PARTITION}:batch:*:*:job-definition/{s.training_job_definition}",
                f"arn:{PARTITION}:batch:*:*:job-definition/{s.training_job_definition}:*",
                # The job being created (and tagged at creation with dataset and run id).
                f"arn:{PARTITION}:batch:*:*:job/*",
            ],
        ),
    ]


def _audit_copies(s: Settings) -> Statement:
    # Each committed audit entry is also kept as an object no role of the system can rewrite or
    # delete: PutObject only as a create-only write (s3:if-none-match), and nothing else there.
    return _allow(
        "KeepAuditCopies",
        ["s3:PutObject"],
        _objects(s.data_bucket, "audit/"),
        StringEquals={"s3:if-none-match": "*"},
    )


def _notify(s: Settings) -> Statement:
    # sts:GetCallerIdentity (to build the topic ARN) needs no permission.
    return _allow(
        "PublishRegistryEvents", ["sns:Publish"], f"arn:{PARTITION}:sns:*:*:{s.notifications_topic}"
    )


def _store_outcomes(s: Settings) -> list[Statement]:
    # Accepted outcomes (POST /models/{name}/outcomes, outcomes/ uploads) are kept create-only
    # (s3:if-none-match) and tagged with their classification, under monitoring/<model>/outcomes/.
    outcomes = _objects(s.data_bucket, "monitoring/*/outcomes/")
    return [
        _allow("StoreOutcomes", ["s3:PutObject"], outcomes, StringEquals={"s3:if-none-match": "*"}),
        _allow("TagStoredOutcomes", ["s3:PutObjectTagging"], outcomes),
    ]


def ingest_upload(s: Settings) -> list[Statement]:
    """Validate an upload, write the report and the copy, record it, announce valid data."""
    return [
        _consume(s.ingest_queue),
        # Uploads of data (incoming/) and of outcomes (outcomes/: checked, stored, bad rows quarantined).
        _allow(
            "ReadUploads",
            ["s3:GetObject", "s3:GetObjectVersion"],
            _objects(s.data_bucket, "incoming/", "outcomes/"),
        ),
        _allow(
            "ReadContractsAndProfiles", ["s3:GetObject"], _objects(s.data_bucket, "contracts/", "profiles/")
        ),
        _list(
            "ListWhatItReads", s.data_bucket, "incoming/", "outcomes/", "contracts/", "profiles/", "shards/"
        ),
        # Every object written is tagged (dataset, classification, stage): PutObjectTagging.
        _allow(
            "WriteValidationOutputs",
            ["s3:PutObject", "s3:PutObjectTagging"],
            _objects(s.data_bucket, "reports/", "validated/", "quarantine/", "profiles/"),
        ),
        # UpdateItem: a split upload's done pieces (an atomic ADD to a set; chalicelib/ingest/scaleout.py).
        _allow(
            "UploadsLedger",
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            _table(s.uploads_table),
        ),
        # A large upload's pieces go through the function's own queue; each piece's result is kept
        # create-only (s3:if-none-match) and tagged under shards/, and read back by the merge.
        _allow("SendUploadPieces", ["sqs:GetQueueUrl", "sqs:SendMessage"], _queue(s.ingest_queue)),
        _allow(
            "WritePieceResults",
            ["s3:PutObject"],
            _objects(s.data_bucket, "shards/"),
            StringEquals={"s3:if-none-match": "*"},
        ),
        _allow(
            "TagAndReadPieceResults",
            ["s3:PutObjectTagging", "s3:GetObject"],
            _objects(s.data_bucket, "shards/"),
        ),
        # Powertools idempotency: the in-progress record (a conditional put), its result (update), and
        # its release when the ingest fails (delete), so the redelivery runs again. No GetItem:
        # Powertools reads an existing record from the failed put itself
        # (ReturnValuesOnConditionCheckFailure) and falls back to GetItem only with boto3 < 1.26.164.
        _allow(
            "IdempotencyRecords",
            ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            _table(s.idempotency_table),
        ),
        _allow("AnnounceValidData", ["sqs:GetQueueUrl", "sqs:SendMessage"], _queue(s.retrain_queue)),
        *_store_outcomes(s),
    ]


def kickoff_retraining(s: Settings) -> list[Statement]:
    return [_consume(s.retrain_queue), *_kickoff(s)]


def scheduled_retrain_check(s: Settings) -> list[Statement]:
    return _kickoff(s)


def evaluate_candidate(s: Settings) -> list[Statement]:
    """Verify a candidate, register it, score it and the champion, apply the gates, maybe promote."""
    return [
        _consume(s.promotion_queue),
        _allow(
            "ReadModelArtifacts",
            ["s3:GetObject", "s3:GetObjectVersion"],
            _objects(s.models_bucket, "models/"),
        ),
        # A missing artifact answers 404 (the candidate is rejected naming it) only to a lister.
        _list("ListModelArtifacts", s.models_bucket, "models/"),
        # (No listing: a candidate whose contract is missing fails and is retried either way.)
        _allow("ReadContracts", ["s3:GetObject"], _objects(s.data_bucket, "contracts/")),
        # Query: a model's versions (waiting versions a promotion supersedes, a rebuild of a
        # rejected model); refused on AWS without it (found by the local cloud's enforced IAM).
        # ConditionCheckItem: a promotion checks, in its transaction, that no rollout is running; a
        # rollout's start checks the champion pointer.
        _allow(
            "Registry",
            [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:Query",
                "dynamodb:ConditionCheckItem",
            ],
            _table(s.registry_table),
        ),
        # A candidate trained on a revoked upload is tainted and rejected: the revoked set and who
        # revoked each upload, from the uploads ledger.
        _allow("ReadRevokedUploads", ["dynamodb:GetItem"], _table(s.uploads_table)),
        # The audit ledger is append-only: create-only puts inside the promotion transaction (and a
        # rollout's start event, ``rollout#<model>``, inside its start's). Read (Query): what was
        # rolled back, so a rebuild of a rolled-back champion is rejected; refused on AWS without it
        # (found by the local cloud's enforced IAM).
        _allow("AuditLedger", ["dynamodb:PutItem", "dynamodb:Query"], _table(s.audit_table)),
        _audit_copies(s),
        _notify(s),
    ]


def api_handler(s: Settings) -> list[Statement]:
    """Every HTTP route: uploads, contracts, retrain requests, runs, the registry, predictions."""
    # A retrain request starts a run as the kickoff does, but reads no validated object (PII
    # included): it pins the data from the listing and the uploads ledger (LedgerSnapshotStore).
    # (Its listing of contracts/ is the one below, with the batch prefixes.)
    kickoff = [
        st
        for st in _kickoff(s)
        if st["Sid"] not in {"ReadRevokedUploads", "ListContractsAndData", "ReadContractsAndData"}
    ]
    for statement in kickoff:
        if statement["Sid"] == "RunsLockAndLedger":  # GET /runs lists them
            statement["Action"] = sorted({*statement["Action"], "dynamodb:Scan"})
    return [
        # GET /uploads/{id}; POST /uploads/{id}/revoke records the revocation on the entry and adds
        # the id to the dataset's revoked set (UpdateItem); the retrain it asks for reads that set.
        # A retrain's snapshot: the sha256 and time of each validated object's upload (BatchGetItem).
        # The console's overview and dataset pages list the ledger (Scan).
        _allow(
            "UploadsLedger",
            ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem", "dynamodb:Scan"],
            _table(s.uploads_table),
        ),
        # The console: an upload's report (statistics and issues; never a value of a confidential or
        # pii column), the per-feature drift of a dataset's uploads from theirs.
        _allow("ReadReports", ["s3:GetObject"], _objects(s.data_bucket, "reports/")),
        # The console's overview: queue and DLQ depths, and the stage's alarms.
        _allow(
            "WatchQueues",
            ["sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
            [_queue(q) for name in s.consumed_queues.values() for q in (name, dlq_name(name))],
        ),
        _allow(
            "WatchAlarms",
            ["cloudwatch:DescribeAlarms"],
            f"arn:{PARTITION}:cloudwatch:*:*:alarm:{s.prefix}-{s.stage}-*",
        ),
        _allow(
            "ReadWriteContracts",
            ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"],
            _objects(s.data_bucket, "contracts/"),
        ),
        # A retrain's snapshot: the latest version of each validated object, listed (not read).
        _allow(
            "ListValidatedVersions",
            ["s3:ListBucketVersions"],
            _bucket(s.data_bucket),
            StringLike={"s3:prefix": ["validated/*"]},
        ),
        *kickoff,
        # Artifacts are read at the version the registry recorded, never unversioned.
        _allow("ReadModelArtifacts", ["s3:GetObjectVersion"], _objects(s.models_bucket, "models/")),
        # ConditionCheckItem: a champion change checks, in its transaction, that no rollout is
        # running; a rollout's start checks the champion pointer.
        _allow(
            "Registry",
            [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:Query",
                "dynamodb:Scan",
                "dynamodb:ConditionCheckItem",
            ],
            _table(s.registry_table),
        ),
        # Append and read the ledger (the champion ledger, ``model#<name>``, and the rollouts' events,
        # ``rollout#<name>``); never update or delete it.
        _allow("AuditLedger", ["dynamodb:PutItem", "dynamodb:Query"], _table(s.audit_table)),
        _audit_copies(s),
        _notify(s),
        # POST /batch-jobs: check the input prefix has objects, record the job, drop the request
        # (create-only); GET /batch-jobs/{id}: the job, its shards and workers.
        _list(
            "ListWhatItReads", s.data_bucket, "batch/", "validated/", "contracts/", "manifests/", "reports/"
        ),
        _allow("DropBatchRequests", ["s3:PutObject"], _objects(s.data_bucket, "batch/requests/")),
        # POST /models/{name}/outcomes (the contract and the registry are read with the grants above).
        *_store_outcomes(s),
        # GET /models/{name}/monitoring: the monitor's window reports and breach records (statistics).
        _allow(
            "ReadMonitoringReports",
            ["s3:GetObject"],
            [
                f"arn:{PARTITION}:s3:::{s.data_bucket}/monitoring/*/windows/*",
                f"arn:{PARTITION}:s3:::{s.data_bucket}/monitoring/*/audit/*",
            ],
        ),
        _list("ListMonitoringReports", s.data_bucket, "monitoring/"),
        _batch_jobs("BatchJobs", s, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"),
        # /predict hashes confidential inputs with the stage's key: read once, created on first use
        # (create-only); a missing key answers 404 only to a lister.
        _allow("ReadCaptureHashKey", ["s3:GetObject"], _objects(s.data_bucket, "keys/capture-hash.key")),
        _allow(
            "MakeCaptureHashKey",
            ["s3:PutObject"],
            _objects(s.data_bucket, "keys/capture-hash.key"),
            StringEquals={"s3:if-none-match": "*"},
        ),
        _list("ListCaptureHashKey", s.data_bucket, "keys/capture-hash.key"),
    ]


def _batch_jobs(sid: str, s: Settings, *actions: str) -> Statement:
    """The batch jobs table: job records, shard and worker items (chalicelib/adapters/aws/batch_jobs.py)."""
    return _allow(sid, actions, _table(s.batch_jobs_table))


def plan_batch_job(s: Settings) -> list[Statement]:
    """A request under batch/requests/ -> the shard plan, one message per shard, the workers."""
    return [
        _consume(s.batch_requests_queue),
        # Requests, plans, and the inputs (read in row-aligned ranges): batch/ and validated/ only
        # (chalicelib/batch/requests.py refuses other input prefixes).
        _allow(
            "ReadRequestsPlansInputs",
            ["s3:GetObject", "s3:GetObjectVersion"],
            _objects(s.data_bucket, "batch/", "validated/"),
        ),
        _allow(
            "ListInputs",
            ["s3:ListBucket", "s3:ListBucketVersions"],
            _bucket(s.data_bucket),
            StringLike={"s3:prefix": ["batch/*", "validated/*"]},
        ),
        _allow("WritePlans", ["s3:PutObject"], _objects(s.data_bucket, "batch/jobs/")),
        # The job (recorded here for a dropped request), its status and its one-time steps.
        _batch_jobs("BatchJobs", s, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
        # A dropped request's version: the champion now. Query: whether a model with no such
        # version exists at all (a request naming an unknown model records a FAILED job naming
        # it); refused on AWS without it (found by the local cloud's enforced IAM).
        _allow("ReadRegistry", ["dynamodb:GetItem", "dynamodb:Query"], _table(s.registry_table)),
        # A dropped request's include_pii is checked against the model's contract (pii columns).
        _allow("ReadContracts", ["s3:GetObject"], _objects(s.data_bucket, "contracts/")),
        _list("ListContracts", s.data_bucket, "contracts/"),
        _allow("QueueShards", ["sqs:GetQueueUrl", "sqs:SendMessage"], _queue(s.batch_work_queue)),
        _allow(
            "StartWorkers",
            ["batch:SubmitJob", "batch:TagResource"],
            [
                f"arn:{PARTITION}:batch:*:*:job-queue/{s.spot_job_queue}",
                f"arn:{PARTITION}:batch:*:*:job-definition/{s.batch_scoring_job_definition}",
                f"arn:{PARTITION}:batch:*:*:job-definition/{s.batch_scoring_job_definition}:*",
                f"arn:{PARTITION}:batch:*:*:job/*",
            ],
        ),
    ]


def batch_shard_failed(s: Settings) -> list[Statement]:
    """Shards that failed every attempt (the work queue's DLQ): marked failed; the job may end PARTIAL."""
    return [
        _consume(f"{s.batch_work_queue}-dlq"),
        # The shard settled in a transaction (Put + Update), its last error, finishing (shards, workers).
        _batch_jobs(
            "BatchJobs", s, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"
        ),
        # Finishing: the job's manifest, create-only, beside its parts (batch/output/<job>/); no
        # more: a write under batch/requests/ would start a batch job.
        _allow(
            "ReadWriteManifests", ["s3:GetObject", "s3:PutObject"], _objects(s.data_bucket, "batch/output/")
        ),
        _notify(s),
    ]


def token_authorizer(s: Settings) -> list[Statement]:
    """Look a token's hash up in Parameter Store (SecureString, decrypted with the stage key)."""
    return [
        _allow(
            "ReadTokenHashes",
            ["ssm:GetParameter"],
            f"arn:{PARTITION}:ssm:*:*:parameter{s.tokens_path}/*",
        )
    ]


def monitor_models(s: Settings) -> list[Statement]:
    """Hourly: per model, report closed windows from the captured records and the outcomes, against the
    champion's reference; record sustained breaches, announce them, ask for a retrain."""
    return [
        # The captured records (Firehose's and the batch workers'), the outcomes, the reports so far.
        _allow(
            "ReadCaptureOutcomesReports",
            ["s3:GetObject"],
            _objects(s.data_bucket, "capture/", "monitoring/", "contracts/"),
        ),
        _list("ListWhatItReads", s.data_bucket, "capture/", "monitoring/"),
        # Window reports (rewritten when late outcomes arrive) and each champion's prediction reference.
        _allow(
            "WriteReports",
            ["s3:PutObject", "s3:PutObjectTagging"],
            [
                f"arn:{PARTITION}:s3:::{s.data_bucket}/monitoring/*/windows/*",
                f"arn:{PARTITION}:s3:::{s.data_bucket}/monitoring/*/reference/*",
            ],
        ),
        # The monitoring audit trail: breach records, create-only (as the registry's audit copies), and
        # tagged (the tagging permission is checked without the request's If-None-Match).
        _allow(
            "RecordBreaches",
            ["s3:PutObject"],
            [f"arn:{PARTITION}:s3:::{s.data_bucket}/monitoring/*/audit/*"],
            StringEquals={"s3:if-none-match": "*"},
        ),
        _allow(
            "TagBreachRecords",
            ["s3:PutObjectTagging"],
            [f"arn:{PARTITION}:s3:::{s.data_bucket}/monitoring/*/audit/*"],
        ),
        # The champion's reference profile, holdout and model, read at the version the registry recorded.
        _allow("ReadModelArtifacts", ["s3:GetObjectVersion"], _objects(s.models_bucket, "models/")),
        # Which models there are (Scan of the counters), their champions and version records (GetItem).
        _allow("ReadRegistry", ["dynamodb:GetItem", "dynamodb:Scan"], _table(s.registry_table)),
        _allow("AskForRetrain", ["sqs:GetQueueUrl", "sqs:SendMessage"], _queue(s.retrain_queue)),
        _notify(s),
    ]


def advance_rollouts(s: Settings) -> list[Statement]:
    """Every five minutes: judge each running rollout on its captured traffic and the outcomes, then
    step it, complete it (the promotion transaction) or abort it; announce aborts and completions."""
    return [
        # The current step's captured records (Firehose's objects), the outcomes received meanwhile
        # (monitoring/<model>/outcomes/), the model's contract (its task and outcome horizon).
        _allow(
            "ReadCaptureOutcomesContracts",
            ["s3:GetObject"],
            [
                *_objects(s.data_bucket, "capture/", "contracts/"),
                *_objects(s.data_bucket, "monitoring/*/outcomes/"),
            ],
        ),
        _list("ListWhatItReads", s.data_bucket, "capture/", "monitoring/", "contracts/"),
        # Which models there are (Scan), each rollout pointer and the candidate's record (GetItem); a
        # step, abort or completion is one transaction conditional on the pointer's revision: the
        # pointer and the versions (Put/Update), the versions a completion supersedes (Query). (No
        # ConditionCheckItem: none of the three checks an item it does not write; iam-report.)
        _allow(
            "Registry",
            [
                "dynamodb:GetItem",
                "dynamodb:Scan",
                "dynamodb:Query",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ],
            _table(s.registry_table),
        ),
        # The audit ledger is append-only: the rollout's events and a completion's promote entry are
        # create-only puts inside the transaction (it reads no ledger).
        _allow("AuditLedger", ["dynamodb:PutItem"], _table(s.audit_table)),
        _audit_copies(s),
        _notify(s),
    ]


def sweep_uploads(s: Settings) -> list[Statement]:
    """Hourly: record each object put outside the known prefixes of the data bucket as ``ignored``
    (chalicelib/ingest/sweep.py). It lists keys and never reads, moves or deletes an object."""
    return [
        # The root with Delimiter '/' (top-level prefixes and root objects), then every unknown prefix:
        # which prefixes those are is not known in advance, so the listing has no prefix condition.
        # ListBucket gives keys, ETags and sizes only; no s3:GetObject anywhere.
        _allow("ListDataBucket", ["s3:ListBucket"], _bucket(s.data_bucket)),
        # What the ledger holds already (one Scan a run), then create-only entries (a conditional
        # PutItem). No UpdateItem, DeleteItem or GetItem: an entry is never changed.
        _allow("UploadsLedger", ["dynamodb:Scan", "dynamodb:PutItem"], _table(s.uploads_table)),
    ]


# Every function of app.py, by its Chalice name. A new function needs an entry here (and its
# settings in .chalice/config.json); tests/deploy/test_deploy.py fails until it has both.
FUNCTIONS: dict[str, Callable[[Settings], list[Statement]]] = {
    "api_handler": api_handler,
    "ingest_upload": ingest_upload,
    "kickoff_retraining": kickoff_retraining,
    "scheduled_retrain_check": scheduled_retrain_check,
    "monitor_models": monitor_models,
    "advance_rollouts": advance_rollouts,
    "sweep_uploads": sweep_uploads,
    "evaluate_candidate": evaluate_candidate,
    "token_authorizer": token_authorizer,
    "plan_batch_job": plan_batch_job,
    "batch_shard_failed": batch_shard_failed,
}


def function_name(settings: Settings, function: str) -> str:
    """The Lambda function's name as Chalice gives it (the API handler has no suffix)."""
    app = f"{settings.prefix}-{settings.stage}"
    return app if function == "api_handler" else f"{app}-{function}"


def render(
    stage: str,
    function: str,
    prefix: str | None = None,
    tracing: bool = True,
    account: str = ANY,
    region: str = ANY,
) -> dict[str, Any]:
    """The policy document of one function in one stage, its ARNs in ``account`` and ``region``
    (``*``: any, as the committed files have them)."""
    settings = Settings.for_stage(stage, prefix or _config_prefix(stage))
    statements = [
        *FUNCTIONS[function](settings),
        _key(settings, function),
        *_logs(function_name(settings, function)),
    ]
    if tracing:
        # X-Ray offers no resource-level permissions for these two actions: "*" is the only choice.
        statements.append(_allow("SendTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*"))
    if (account, region) != (ANY, ANY):
        statements = [_scoped(statement, _account(account), _region(region)) for statement in statements]
    return {"Version": "2012-10-17", "Statement": statements}


# --- the account and the region -----------------------------------------------------------------------

# What deploys may name: a 12-digit account and a region, or the CloudFormation pseudo parameters.
ACCOUNT_ID = re.compile(r"\d{12}|\$\{AWS::AccountId\}")
REGION_NAME = re.compile(r"[a-z]{2}(-[a-z]+)+-\d|\$\{AWS::Region\}")
STACK_ACCOUNT, STACK_REGION = "${AWS::AccountId}", "${AWS::Region}"


def _account(account: str) -> str:
    if not ACCOUNT_ID.fullmatch(account):
        raise ValueError(f"account {account!r}: expected a 12-digit AWS account id")
    return account


def _region(region: str) -> str:
    if not REGION_NAME.fullmatch(region):
        raise ValueError(f"region {region!r}: expected an AWS region such as eu-west-1")
    return region


def _scoped(statement: Statement, account: str, region: str) -> Statement:
    """The statement with the ``*`` account and region of its ARNs filled in (S3 ARNs have neither;
    a ``Resource: "*"`` is no ARN and stays)."""

    def arn(text: str) -> str:
        parts = text.split(":", 5)
        if len(parts) < 6 or parts[0] != "arn" or parts[2] == "s3":
            return text
        if parts[3] == ANY:
            parts[3] = region
        if parts[4] == ANY:
            parts[4] = account
        return ":".join(parts)

    resources = statement["Resource"]
    scoped = [arn(r) for r in resources] if isinstance(resources, list) else arn(resources)
    return {**statement, "Resource": scoped}


def for_cloudformation(document: dict[str, Any]) -> dict[str, Any]:
    """A policy rendered for ``STACK_ACCOUNT``/``STACK_REGION``, its ARNs as ``Fn::Sub`` (for a
    template: CloudFormation fills in the stack's account and region)."""

    def resource(text: str) -> Any:
        return {"Fn::Sub": text} if "${AWS::" in text else text

    statements = []
    for statement in document["Statement"]:
        resources = statement["Resource"]
        subbed = [resource(r) for r in resources] if isinstance(resources, list) else resource(resources)
        statements.append({**statement, "Resource": subbed})
    return {**document, "Statement": statements}


@contextlib.contextmanager
def scoped_files(
    stage: str, account: str, region: str, chalice_dir: Path = CHALICE_DIR
) -> Iterator[list[Path]]:
    """While the body runs (``chalice deploy``), the stage's policy files name ``account`` and
    ``region``; then the files are put back as they were (the committed ones), failure or not."""
    files = {
        chalice_dir / policy_file(stage, function): json.dumps(
            render(stage, function, tracing=_tracing(stage), account=account, region=region), indent=2
        )
        + "\n"
        for function in FUNCTIONS
    }
    kept = {path: path.read_bytes() if path.exists() else None for path in files}
    try:
        for path, text in files.items():
            path.write_text(text)
        yield sorted(files)
    finally:
        for path, before in kept.items():
            if before is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(before)


def _stage_config(stage: str) -> dict[str, Any]:
    config = json.loads((CHALICE_DIR / "config.json").read_text())
    return dict(config["stages"][stage])


def config_prefix(stage: str) -> str:
    """The stage's ``MLOPS_PREFIX`` in ``.chalice/config.json``."""
    return _config_prefix(stage)


def _config_prefix(stage: str) -> str:
    return str(_stage_config(stage).get("environment_variables", {}).get("MLOPS_PREFIX", "serverless-mlops"))


def tracing(stage: str) -> bool:
    """Whether the stage traces (``xray`` in ``.chalice/config.json``): its policies then allow it."""
    return _tracing(stage)


def _tracing(stage: str) -> bool:
    return bool(_stage_config(stage).get("xray", False))


def rendered(stages: Iterable[str] = DEPLOYED_STAGES) -> dict[Path, str]:
    """Every policy file's path and text, as they should be on disk."""
    return {
        CHALICE_DIR / policy_file(stage, function): json.dumps(
            render(stage, function, tracing=_tracing(stage)), indent=2
        )
        + "\n"
        for stage in stages
        for function in FUNCTIONS
    }


def api_role_policy(role: str, api: str = f"arn:{PARTITION}:execute-api:*:*:*/*") -> dict[str, Any]:
    """With ``MLOPS_AUTH=iam``: the IAM policy that gives a caller ``role``'s routes (the same table
    the token authorizer applies, ``chalicelib.auth.PERMISSIONS``). ``api``: the API's ARN up to the
    stage, ``arn:aws:execute-api:<region>:<account>:<api id>/<stage>`` (default: any API)."""
    from chalicelib import auth

    resources = sorted(
        {f"{api}/{method}{re.sub(r'{[^}/]+}', '*', path)}" for method, path in auth.allowed_routes(role)}
    )
    return {
        "Version": "2012-10-17",
        "Statement": [_allow(f"Invoke as {role}", ["execute-api:Invoke"], resources)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops policies", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a policy file is missing or stale")
    parser.add_argument(
        "--api-role",
        choices=("viewer", "reporter", "approver", "admin"),
        help="print the IAM policy giving a caller this role's routes (MLOPS_AUTH=iam) and exit",
    )
    parser.add_argument(
        "--api",
        default=f"arn:{PARTITION}:execute-api:*:*:*/*",
        help="the API's ARN up to the stage, for --api-role (default: any API)",
    )
    args = parser.parse_args(argv)
    if args.api_role:
        print(json.dumps(api_role_policy(args.api_role, args.api.rstrip("/")), indent=2))
        return 0
    stale = [path for path, text in rendered().items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(PROJECT_DIR)} (run: mlops policies)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in rendered().items():
        path.write_text(text)
    print(f"wrote {len(rendered())} policy files in .chalice/ ({len(stale)} changed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
