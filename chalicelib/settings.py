"""Resource names and runtime settings, derived from the stage.

One naming convention, ``<prefix>-<stage>-<resource>``, is shared by the CloudFormation template
(``infra/template.yaml``), the stage environment variables in ``.chalice/config.json`` and the
local cloud. Every name can be overridden by its environment variable; a test keeps the three in
agreement.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

# A dataset's (and its model's) name: part of S3 keys and resource paths.
DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
DEFAULT_PREFIX = "serverless-mlops"
DEFAULT_STAGE = "local"
STAGES = ("local", "dev", "prod")

# Field name -> (environment variable, resource suffix). The environment variable names are the
# contract with .chalice/config.json; the suffixes are the contract with infra/template.yaml.
_RESOURCES: dict[str, tuple[str, str]] = {
    "data_bucket": ("DATA_BUCKET", "data"),
    "models_bucket": ("MODELS_BUCKET", "models"),
    "ingest_queue": ("INGEST_QUEUE", "ingest"),
    "retrain_queue": ("RETRAIN_QUEUE", "retrain"),
    "promotion_queue": ("PROMOTION_QUEUE", "promotion"),
    "batch_work_queue": ("BATCH_WORK_QUEUE", "batch-work"),
    "batch_requests_queue": ("BATCH_REQUESTS_QUEUE", "batch-requests"),
    "batch_jobs_table": ("BATCH_JOBS_TABLE", "batch-jobs"),
    "batch_scoring_job_definition": ("BATCH_SCORING_JOB_DEFINITION", "batch-scoring"),
    "uploads_table": ("UPLOADS_TABLE", "uploads"),
    "idempotency_table": ("IDEMPOTENCY_TABLE", "idempotency"),
    "runs_table": ("RUNS_TABLE", "runs"),
    "registry_table": ("REGISTRY_TABLE", "registry"),
    "audit_table": ("AUDIT_TABLE", "audit"),
    "notifications_topic": ("NOTIFICATIONS_TOPIC", "notifications"),
    "spot_job_queue": ("SPOT_JOB_QUEUE", "spot"),
    "ondemand_job_queue": ("ONDEMAND_JOB_QUEUE", "ondemand"),
    "training_job_definition": ("TRAINING_JOB_DEFINITION", "training"),
}

_SQS_QUEUES = ("ingest_queue", "retrain_queue", "promotion_queue", "batch_work_queue", "batch_requests_queue")


def resource_name(prefix: str, stage: str, suffix: str) -> str:
    return f"{prefix}-{stage}-{suffix}"


def dlq_name(queue_name: str) -> str:
    return f"{queue_name}-dlq"


@dataclass(frozen=True)
class Settings:
    """Names of the data-plane resources for one stage."""

    stage: str
    prefix: str
    data_bucket: str
    models_bucket: str
    ingest_queue: str
    retrain_queue: str
    promotion_queue: str
    batch_work_queue: str
    batch_requests_queue: str
    batch_jobs_table: str
    batch_scoring_job_definition: str
    uploads_table: str
    idempotency_table: str
    runs_table: str
    registry_table: str
    audit_table: str
    notifications_topic: str
    spot_job_queue: str
    ondemand_job_queue: str
    training_job_definition: str

    @classmethod
    def for_stage(cls, stage: str = DEFAULT_STAGE, prefix: str = DEFAULT_PREFIX) -> Settings:
        """The names the convention gives, ignoring the environment."""
        names = {field: resource_name(prefix, stage, suffix) for field, (_, suffix) in _RESOURCES.items()}
        return cls(stage=stage, prefix=prefix, **names)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The names for ``MLOPS_STAGE``/``MLOPS_PREFIX``, each overridable by its variable."""
        env = os.environ if environ is None else environ
        base = cls.for_stage(env.get("MLOPS_STAGE", DEFAULT_STAGE), env.get("MLOPS_PREFIX", DEFAULT_PREFIX))
        overrides = {field: env[var] for field, (var, _) in _RESOURCES.items() if env.get(var)}
        return cls(**{**base.as_dict(), **overrides})

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def environment(self) -> dict[str, str]:
        """The stage environment variables, as ``.chalice/config.json`` carries them."""
        env = {"MLOPS_STAGE": self.stage, "MLOPS_PREFIX": self.prefix}
        env.update({var: getattr(self, field) for field, (var, _) in _RESOURCES.items()})
        return env

    @property
    def tokens_path(self) -> str:
        """SSM Parameter Store path of the API tokens (``<path>/<sha256 of the token>``)."""
        return f"/{self.prefix}/{self.stage}/tokens"

    @property
    def queues(self) -> dict[str, str]:
        """Every SQS work queue by field name (each has a DLQ named ``<queue>-dlq``)."""
        return {field: getattr(self, field) for field in _SQS_QUEUES}

    @property
    def consumed_queues(self) -> dict[str, str]:
        """Every queue something consumes (functions, the scoring workers): the work queues and the
        batch work queue's DLQ (read by ``batch_shard_failed``), each with a DLQ named ``<queue>-dlq``
        that nothing consumes."""
        return self.queues | {"batch_work_dlq": dlq_name(self.batch_work_queue)}


# SubmitJob: up to 128 letters, numbers, hyphens and underscores, starting with a letter or number.
MAX_JOB_NAME = 128
_NOT_IN_JOB_NAMES = re.compile(r"[^A-Za-z0-9_-]+")


def job_name(kind: str, subject: str, run_id: str) -> str:
    """``<kind>-<subject>-<run_id>`` in AWS Batch's alphabet, at most 128 characters.

    ``kind`` says which job it is (``train``, ``batch``), ``subject`` what it works on (a dataset, or
    ``score``). Characters Batch refuses become ``-``. When the name is too long the subject is
    shortened first: the run id is what tells two jobs apart in the console.
    """
    safe_subject = _NOT_IN_JOB_NAMES.sub("-", subject)
    safe_run = _NOT_IN_JOB_NAMES.sub("-", run_id)
    name = f"{kind}-{safe_subject}-{safe_run}"
    if len(name) > MAX_JOB_NAME:
        room = max(MAX_JOB_NAME - len(kind) - 2 - len(safe_run), 1)
        name = f"{kind}-{safe_subject[:room]}-{safe_run}"[:MAX_JOB_NAME]
    return name
