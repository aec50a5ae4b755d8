"""The local cloud's IAM: every function, job and worker calls AWS as its own role, checked as AWS would.

moto does not check what a caller may do unless told to, and when told to it is too coarse for this
system's policies (it checks every service but S3 against resource ``*``, and it denies any statement
whose condition it cannot evaluate). So the local cloud checks every call itself, before the call
leaves the process:

* **Who.** Each Lambda function, the training job and the scoring worker is a *principal* with the
  policy that deploys: the function policies rendered for the stage (``mlops.policies``, the same
  code that writes ``.chalice/policy-<stage>-<function>.json``), and the job roles exactly as the
  data-plane template created them in the local cloud's IAM. A role is created and assumed (STS) for
  each, so each principal's requests are signed with credentials of its own. Which principal is
  calling is a context variable, set around every invocation by the local cloud (``acting_as``);
  child processes (jobs, workers) are started as theirs (``child_command``).
* **What.** Each call is turned into the IAM action(s) and resource ARN(s) AWS would authorise,
  including what a service does with the caller's permissions on its behalf (reading an S3 object
  encrypted with the stage key needs ``kms:Decrypt`` on that key; a versioned read needs
  ``s3:GetObjectVersion``; ``ListObjectsV2`` is ``s3:ListBucket`` with an ``s3:prefix`` condition
  key; a transaction needs each of its items' actions). A call this module cannot describe is refused
  loudly (``UnmodelledCall``), so nothing escapes the check by being new.
* **Decision.** The policy evaluation logic of IAM for identity policies: an explicit deny wins, then
  any allow, else an implicit deny; ``Action``/``NotAction``, ``Resource``/``NotResource`` with ``*``
  and ``?``; the condition operators the policies use. A refusal raises botocore's ``ClientError``
  with code ``AccessDenied`` (``AccessDeniedException`` for JSON services), as AWS answers.
* **Record.** Every checked call is recorded with the statements that allowed it, so
  ``statement_needs`` can tell, for each statement of each policy, whether removing it would refuse
  a call the system made (a mutation test without re-running anything), or whether it is unused.

The operator (the CLI, the demo driver, the tests' own set-up) is not a function: its calls go out
unchecked with the process's credentials, as an administrator's would.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import fnmatch
import functools
import json
import os
import re
import runpy
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

OPERATOR = "operator"
_PRINCIPAL: contextvars.ContextVar[str] = contextvars.ContextVar("mlops_principal", default=OPERATOR)
# Set by a test that attempts what must be refused (expect_refusal): its refusals are the point.
_EXPECTED: contextvars.ContextVar[bool] = contextvars.ContextVar("mlops_refusal_expected", default=False)

# Actions the Lambda service performs with the function's role, not the function's code: writing the
# function's logs and traces. The local cloud has no such service, so no call exercises them.
RUNTIME_ACTIONS = frozenset(
    {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
)


class UnmodelledCall(RuntimeError):
    """A principal made a call this module cannot turn into actions and resources: add it to
    ``describe`` (a guess would let an unchecked call through)."""


# --- IAM policy evaluation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One authorisation AWS performs: an action on a resource, with the condition keys it knows."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def context_dict(self) -> dict[str, str]:
        return dict(self.context)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    allowed_by: tuple[str, ...] = ()  # "<policy>/<sid or index>" of every matching Allow
    denied_by: tuple[str, ...] = ()  # ... of every matching Deny


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, case: bool) -> bool:
    """IAM's wildcards: ``*`` any run of characters (``/`` and ``:`` included), ``?`` one character."""
    return _compiled(pattern, case).fullmatch(value) is not None


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str, case: bool) -> re.Pattern[str]:
    # Every call is checked against every statement of a policy: the patterns are few, the checks
    # many (building them each time was a tenth of an upload's time in the local cloud).
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, 0 if case else re.IGNORECASE)


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, str]) -> bool:
    values = [str(v) for v in as_list(expected)]
    present = key in context
    actual = context.get(key, "")
    if operator.endswith("IfExists"):
        if not present:
            return True
        operator = operator.removesuffix("IfExists")
    if operator == "Null":
        return (not present) == (values[0].lower() == "true")
    if operator in {"StringEquals", "ArnEquals"}:
        return present and actual in values
    if operator == "StringEqualsIgnoreCase":
        return present and actual.lower() in {v.lower() for v in values}
    if operator in {"StringLike", "ArnLike"}:
        return present and any(_glob(v, actual, case=True) for v in values)
    if operator in {"StringNotEquals", "ArnNotEquals"}:
        return not present or actual not in values
    if operator in {"StringNotLike", "ArnNotLike"}:
        return not present or not any(_glob(v, actual, case=True) for v in values)
    if operator == "Bool":
        return present and actual.lower() in {v.lower() for v in values}
    raise UnmodelledCall(f"condition operator {operator!r} is not implemented by the local IAM")


def _statement_matches(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not any(_glob(p, request.action, case=False) for p in as_list(statement["Action"])):
            return False
    elif any(_glob(p, request.action, case=False) for p in as_list(statement.get("NotAction", []))):
        return False
    if "Resource" in statement:
        if not any(_glob(p, request.resource, case=True) for p in as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement and any(
        _glob(p, request.resource, case=True) for p in as_list(statement["NotResource"])
    ):
        return False
    context = request.context_dict()
    for operator, keys in statement.get("Condition", {}).items():
        for key, expected in keys.items():
            if not _condition_holds(operator, key, expected, context):
                return False
    return True


def evaluate(policies: Mapping[str, Mapping[str, Any]], request: Request) -> Decision:
    """IAM's evaluation of identity policies (``name -> document``) for one request."""
    allows: list[str] = []
    denies: list[str] = []
    for name, document in policies.items():
        for index, statement in enumerate(as_list(document.get("Statement", []))):
            if _statement_matches(statement, request):
                label = f"{name}/{statement.get('Sid') or index}"
                (denies if statement.get("Effect") == "Deny" else allows).append(label)
    return Decision(allowed=bool(allows) and not denies, allowed_by=tuple(allows), denied_by=tuple(denies))


# --- what a call asks for ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """Where the calls go, and which resources the stage key encrypts (AWS then asks the caller's
    permission to use the key on the service's behalf)."""

    region: str
    account: str
    key_arn: str = ""
    key_tags: tuple[tuple[str, str], ...] = ()
    encrypted_buckets: frozenset[str] = frozenset()
    encrypted_queues: frozenset[str] = frozenset()
    encrypted_topics: frozenset[str] = frozenset()
    encrypted_parameter_paths: tuple[str, ...] = ()

    def arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:aws:{service}:{self.region if region else ''}:{self.account if account else ''}:{resource}"
        )

    def key(self, action: str) -> Request:
        context = tuple(sorted((f"aws:ResourceTag/{k}", v) for k, v in self.key_tags))
        return Request(action, self.key_arn, context)

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "account": self.account,
            "key_arn": self.key_arn,
            "key_tags": [list(t) for t in self.key_tags],
            "encrypted_buckets": sorted(self.encrypted_buckets),
            "encrypted_queues": sorted(self.encrypted_queues),
            "encrypted_topics": sorted(self.encrypted_topics),
            "encrypted_parameter_paths": list(self.encrypted_parameter_paths),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Account:
        return cls(
            region=data["region"],
            account=data["account"],
            key_arn=data["key_arn"],
            key_tags=tuple((k, v) for k, v in data["key_tags"]),
            encrypted_buckets=frozenset(data["encrypted_buckets"]),
            encrypted_queues=frozenset(data["encrypted_queues"]),
            encrypted_topics=frozenset(data["encrypted_topics"]),
            encrypted_parameter_paths=tuple(data["encrypted_parameter_paths"]),
        )


def _s3_object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _s3(operation: str, params: Mapping[str, Any], acct: Account) -> list[Request]:
    bucket = str(params.get("Bucket", ""))
    key = str(params.get("Key", ""))
    versioned = bool(params.get("VersionId"))
    encrypted = bucket in acct.encrypted_buckets
    decrypt = [acct.key("kms:Decrypt")] if encrypted else []
    encrypt = [acct.key("kms:GenerateDataKey")] if encrypted else []
    obj = _s3_object(bucket, key)
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if operation in {"GetObject", "HeadObject"}:
        action = "s3:GetObjectVersion" if versioned else "s3:GetObject"
        # HEAD reads no data: S3 asks for no key.
        return [Request(action, obj), *(decrypt if operation == "GetObject" else [])]
    if operation in {"PutObject", "CreateMultipartUpload"}:
        tagging = [Request("s3:PutObjectTagging", obj)] if params.get("Tagging") else []
        # A conditional write's condition keys (S3 sets them from If-None-Match and If-Match).
        context = tuple(
            (f"s3:{name.lower()}", str(params[header]))
            for header, name in (("IfNoneMatch", "if-none-match"), ("IfMatch", "if-match"))
            if params.get(header)
        )
        return [Request("s3:PutObject", obj, context), *tagging, *encrypt]
    if operation in {"UploadPart", "CompleteMultipartUpload"}:
        return [Request("s3:PutObject", obj), *encrypt]
    if operation == "AbortMultipartUpload":
        return [Request("s3:AbortMultipartUpload", obj)]
    if operation == "CopyObject":
        source = params.get("CopySource")
        if isinstance(source, Mapping):
            src_bucket, src_key, src_version = source["Bucket"], source["Key"], source.get("VersionId")
        else:
            text = str(source).lstrip("/")
            path, _, query = text.partition("?versionId=")
            src_bucket, _, src_key = path.partition("/")
            src_version = query or None
        read = "s3:GetObjectVersion" if src_version else "s3:GetObject"
        tagging = (
            [Request("s3:PutObjectTagging", obj)]
            if params.get("Tagging") and params.get("TaggingDirective") == "REPLACE"
            else []
        )
        src_decrypt = [acct.key("kms:Decrypt")] if src_bucket in acct.encrypted_buckets else []
        return [
            Request(read, _s3_object(src_bucket, src_key)),
            Request("s3:PutObject", obj),
            *tagging,
            *src_decrypt,
            *encrypt,
        ]
    if operation in {"PutObjectTagging", "GetObjectTagging", "DeleteObjectTagging"}:
        verb = operation.removesuffix("Tagging")
        action = f"s3:{verb}VersionTagging" if versioned else f"s3:{verb}Tagging"
        return [Request(action, obj)]
    if operation == "DeleteObject":
        return [Request("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject", obj)]
    if operation == "DeleteObjects":
        return [
            Request(
                "s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject",
                _s3_object(bucket, o["Key"]),
            )
            for o in params.get("Delete", {}).get("Objects", [])
        ]
    if operation in {"ListObjectsV2", "ListObjects", "ListObjectVersions"}:
        action = "s3:ListBucketVersions" if operation == "ListObjectVersions" else "s3:ListBucket"
        context = (("s3:prefix", str(params["Prefix"])),) if "Prefix" in params else ()
        return [Request(action, bucket_arn, context)]
    if operation in {
        "PutObjectRetention",
        "PutObjectLegalHold",
        "PutObjectAcl",
        "GetObjectAcl",
        "RestoreObject",
    }:
        return [Request(f"s3:{operation}", obj)]
    if operation == "HeadBucket":
        return [Request("s3:ListBucket", bucket_arn)]
    if operation in {
        "GetBucketVersioning",
        "GetBucketLocation",
        "GetBucketTagging",
        "GetBucketNotificationConfiguration",
    }:
        return [Request(f"s3:{operation.replace('Configuration', '')}", bucket_arn)]
    raise UnmodelledCall(f"s3:{operation}")


_DYNAMO_SIMPLE = {
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "DescribeTable",
    "ConditionCheckItem",
    "BatchWriteItem",
    "BatchGetItem",
    "DescribeTimeToLive",
}


def _dynamodb(operation: str, params: Mapping[str, Any], acct: Account) -> list[Request]:
    def table(name: str, index: str | None = None) -> str:
        arn = name if name.startswith("arn:") else acct.arn("dynamodb", f"table/{name}")
        return f"{arn}/index/{index}" if index else arn

    if operation in {"BatchWriteItem", "BatchGetItem"}:
        return [Request(f"dynamodb:{operation}", table(name)) for name in params.get("RequestItems", {})]
    if operation in _DYNAMO_SIMPLE:
        return [Request(f"dynamodb:{operation}", table(str(params["TableName"]), params.get("IndexName")))]
    if operation == "TransactWriteItems":
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        return [
            Request(f"dynamodb:{kinds[kind]}", table(str(body["TableName"])))
            for item in params.get("TransactItems", [])
            for kind, body in item.items()
        ]
    if operation == "TransactGetItems":
        return [
            Request("dynamodb:GetItem", table(str(i["Get"]["TableName"])))
            for i in params.get("TransactItems", [])
        ]
    raise UnmodelledCall(f"dynamodb:{operation}")


_SQS_ACTIONS = {
    "SendMessage": "SendMessage",
    "SendMessageBatch": "SendMessage",
    "ReceiveMessage": "ReceiveMessage",
    "DeleteMessage": "DeleteMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibility": "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    "GetQueueAttributes": "GetQueueAttributes",
    "GetQueueUrl": "GetQueueUrl",
    "PurgeQueue": "PurgeQueue",
}


def _sqs(operation: str, params: Mapping[str, Any], acct: Account) -> list[Request]:
    if operation not in _SQS_ACTIONS:
        raise UnmodelledCall(f"sqs:{operation}")
    if operation == "GetQueueUrl":
        name, owner = str(params["QueueName"]), str(params.get("QueueOwnerAWSAccountId") or acct.account)
    else:  # https://sqs.<region>.amazonaws.com/<account>/<name> (the local cloud's: http://host/<account>/<name>)
        owner, name = str(params["QueueUrl"]).rstrip("/").rsplit("/", 2)[-2:]
    requests = [Request(f"sqs:{_SQS_ACTIONS[operation]}", replace(acct, account=owner).arn("sqs", name))]
    if name in acct.encrypted_queues:
        if operation in {"SendMessage", "SendMessageBatch"}:
            requests += [acct.key("kms:GenerateDataKey"), acct.key("kms:Decrypt")]
        elif operation == "ReceiveMessage":
            requests.append(acct.key("kms:Decrypt"))
    return requests


def _sns(operation: str, params: Mapping[str, Any], acct: Account) -> list[Request]:
    if operation != "Publish":
        raise UnmodelledCall(f"sns:{operation}")
    topic = str(params.get("TopicArn") or params.get("TargetArn"))
    requests = [Request("sns:Publish", topic)]
    if topic.rsplit(":", 1)[-1] in acct.encrypted_topics:
        requests += [acct.key("kms:GenerateDataKey"), acct.key("kms:Decrypt")]
    return requests


def _ssm(operation: str, params: Mapping[str, Any], acct: Account) -> list[Request]:
    def parameter(name: str) -> str:
        return name if name.startswith("arn:") else acct.arn("ssm", f"parameter/{name.lstrip('/')}")

    def encrypted(name: str) -> bool:
        return any(name.startswith(p) for p in acct.encrypted_parameter_paths)

    if operation in {"GetParameter", "PutParameter", "DeleteParameter", "GetParameterHistory"}:
        name = str(params["Name"])
        requests = [Request(f"ssm:{operation}", parameter(name))]
        if encrypted(name) and (params.get("WithDecryption") or operation == "PutParameter"):
            requests.append(acct.key("kms:Encrypt" if operation == "PutParameter" else "kms:Decrypt"))
        return requests
    if operation == "GetParametersByPath":
        path = str(params["Path"])
        requests = [Request("ssm:GetParametersByPath", parameter(path))]
        if params.get("WithDecryption") and encrypted(path.rstrip("/") + "/"):
            requests.append(acct.key("kms:Decrypt"))
        return requests
    raise UnmodelledCall(f"ssm:{operation}")


def _batch(operation: str, params: Mapping[str, Any], acct: Account) -> list[Request]:
    def arn(kind: str, name: str) -> str:
        return name if name.startswith("arn:") else acct.arn("batch", f"{kind}/{name}")

    if operation == "SubmitJob":
        definition = str(params["jobDefinition"])
        requests = [
            Request("batch:SubmitJob", arn("job-queue", str(params["jobQueue"]))),
            Request("batch:SubmitJob", arn("job-definition", definition)),
        ]
        if params.get("tags"):
            requests.append(Request("batch:TagResource", acct.arn("batch", f"job/{params['jobName']}")))
        return requests
    if operation in {"DescribeJobs", "ListJobs", "DescribeJobQueues", "DescribeJobDefinitions"}:
        return [Request(f"batch:{operation}", "*")]
    if operation in {"TerminateJob", "CancelJob"}:
        return [Request(f"batch:{operation}", arn("job", str(params["jobId"])))]
    raise UnmodelledCall(f"batch:{operation}")


def describe(
    service: str, operation: str, params: Mapping[str, Any], acct: Account, region: str | None = None
) -> list[Request]:
    """The authorisations AWS performs for one API call (``service``: the endpoint prefix), made by a
    client of ``region`` (default: the account's). A resource named by name is the caller's in that
    region; one named by ARN (or a queue by its URL) is the one it names, in any account."""
    if service == "sts" and operation == "GetCallerIdentity":
        return []  # needs no permission
    if region and region != acct.region:
        acct = replace(acct, region=region)
    handlers: dict[str, Callable[[str, Mapping[str, Any], Account], list[Request]]] = {
        "s3": _s3,
        "dynamodb": _dynamodb,
        "sqs": _sqs,
        "sns": _sns,
        "ssm": _ssm,
        "batch": _batch,
    }
    if service in handlers:
        return handlers[service](operation, params, acct)
    if service == "monitoring" and operation == "DescribeAlarms":  # CloudWatch's endpoint prefix
        # Named alarms are each an alarm ARN; a prefix (the console's overview) all its alarms.
        names = params.get("AlarmNames") or [f"{params.get('AlarmNamePrefix') or ''}*"]
        return [Request("cloudwatch:DescribeAlarms", acct.arn("cloudwatch", f"alarm:{n}")) for n in names]
    if service == "cloudwatch" and operation == "PutMetricData":
        return [
            Request(
                "cloudwatch:PutMetricData", "*", (("cloudwatch:namespace", str(params.get("Namespace"))),)
            )
        ]
    raise UnmodelledCall(f"{service}:{operation}")


# --- principals, the check, the record ---------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    principal: str
    request: Request
    decision: Decision
    operation: str  # service:Operation as called
    expected_refusal: bool = False  # made inside expect_refusal(): a refusal here is no finding


@dataclass
class Principal:
    name: str
    policies: dict[str, dict[str, Any]]
    credentials: Any = None  # botocore Credentials of the assumed role (None: the process's own)
    role_arn: str = ""


@dataclass
class LocalIam:
    """The principals of one local cloud, and every call they made."""

    account: Account
    principals: dict[str, Principal] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    sink: Callable[[Call], None] | None = None  # children: each call to a file as it happens
    # A child process (job, worker) is its principal in every thread it starts, not only in the
    # context it was started in (the worker reads its shards on a thread of its own).
    process_principal: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, principal: Principal) -> None:
        self.principals[principal.name] = principal

    def current(self) -> str:
        name = _PRINCIPAL.get()
        return self.process_principal if name == OPERATOR and self.process_principal else name

    def check(
        self, service: str, operation: str, params: Mapping[str, Any], region: str | None = None
    ) -> None:
        name = self.current()
        if name == OPERATOR:
            return
        principal = self.principals.get(name)
        if principal is None:
            raise UnmodelledCall(f"{name!r} is not a principal of the local cloud")
        try:
            requests = describe(service, operation, params, self.account, region)
        except UnmodelledCall as exc:
            raise UnmodelledCall(f"{name} called {exc}, which the local IAM cannot describe") from None
        for request in requests:
            if not self._decide(principal, request, f"{service}:{operation}"):
                raise access_denied(service, operation, principal, request)

    def check_request(self, operation: str, request: Request) -> bool:
        """One authorisation a service performs besides the call's own (True: allowed)."""
        name = self.current()
        principal = self.principals.get(name)
        if principal is None:
            return True  # the operator
        return self._decide(principal, request, operation)

    def _decide(self, principal: Principal, request: Request, operation: str) -> bool:
        decision = evaluate(principal.policies, request)
        call = Call(principal.name, request, decision, operation, _EXPECTED.get())
        with self._lock:
            self.calls.append(call)
        if self.sink is not None:
            self.sink(call)
        return decision.allowed

    def credentials_for_current(self) -> Any:
        principal = self.principals.get(self.current())
        return principal.credentials if principal else None

    # --- what the record shows -----------------------------------------------------------------------

    def export(self) -> list[dict[str, Any]]:
        with self._lock:
            return [_call_json(c) for c in self.calls]


def _call_json(c: Call) -> dict[str, Any]:
    return {
        "principal": c.principal,
        "operation": c.operation,
        "action": c.request.action,
        "resource": c.request.resource,
        "context": [list(kv) for kv in c.request.context],
        "allowed": c.decision.allowed,
        "expected_refusal": c.expected_refusal,
    }


def access_denied(service: str, operation: str, principal: Principal, request: Request) -> Exception:
    from botocore.exceptions import ClientError

    json_services = {"dynamodb", "ssm", "batch", "sts"}
    code = "AccessDeniedException" if service in json_services else "AccessDenied"
    who = principal.role_arn or principal.name
    message = (
        f"User: {who} is not authorized to perform: {request.action} on resource: {request.resource} "
        "because no identity-based policy allows the action (local cloud IAM)"
    )
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 403}}, operation
    )


# --- installing the check into every botocore client of this process ---------------------------------

_ACTIVE: list[LocalIam] = []


def _before_parameter_build(params: Any, model: Any, context: Any = None, **_: Any) -> None:
    if not _ACTIVE:
        return
    service = model.service_model.endpoint_prefix
    if service == "s3" and model.name in MISSING_KEY_OPERATIONS and isinstance(context, dict):
        context["mlops_s3_object"] = (str(params.get("Bucket", "")), str(params.get("Key", "")))
    region = context.get("client_region") if isinstance(context, dict) else None
    _ACTIVE[-1].check(service, model.name, params, region)


# S3 answers a read of a missing key with 404 only to a caller allowed to list the bucket, and with
# 403 AccessDenied to any other (a 404 would tell it what the bucket holds). The condition keys of
# that implicit check are not documented; the local IAM gives it ``s3:prefix`` = the key read (so a
# listing permission scoped to the key's prefix counts), which may be more lenient than AWS.
MISSING_KEY_OPERATIONS = frozenset({"GetObject", "HeadObject"})


def _after_call(parsed: Any, model: Any, context: Any = None, **_: Any) -> None:
    if not _ACTIVE or not isinstance(context, dict) or "mlops_s3_object" not in context:
        return
    metadata = parsed.get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
    if metadata.get("HTTPStatusCode") != 404:
        return
    bucket, key = context["mlops_s3_object"]
    request = Request("s3:ListBucket", f"arn:aws:s3:::{bucket}", (("s3:prefix", key),))
    if not _ACTIVE[-1].check_request(f"s3:{model.name} (a missing key)", request):
        parsed["Error"] = {
            "Code": "AccessDenied",
            "Message": f"Access Denied (a missing key, and no s3:ListBucket on {bucket} for it: local cloud IAM)",
        }


def _before_sign(request: Any, **_: Any) -> None:
    if not _ACTIVE:
        return
    credentials = _ACTIVE[-1].credentials_for_current()
    if credentials is not None:
        request.context.setdefault("signing", {})["request_credentials"] = credentials


_HANDLERS = (
    ("before-parameter-build", _before_parameter_build),
    ("before-sign", _before_sign),
    ("after-call.s3", _after_call),
)


def install(iam: LocalIam) -> None:
    """Check every call of this process's clients created from now on (botocore's built-in handlers
    are registered into each new session, which is how moto's own mock attaches too)."""
    from botocore import handlers

    for spec in _HANDLERS:
        if spec not in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.append(spec)
    _ACTIVE.append(iam)
    _reset_clients()


def uninstall(iam: LocalIam) -> None:
    if iam in _ACTIVE:
        _ACTIVE.remove(iam)
    if not _ACTIVE:
        from botocore import handlers

        for spec in _HANDLERS:
            if spec in handlers.BUILTIN_HANDLERS:
                handlers.BUILTIN_HANDLERS.remove(spec)
    _reset_clients()


def _reset_clients() -> None:
    from chalicelib import bootstrap

    bootstrap.reset()


@contextlib.contextmanager
def acting_as(principal: str) -> Iterator[None]:
    """Run the body as ``principal`` (a function's name, a job's): its calls are checked and signed as it."""
    token = _PRINCIPAL.set(principal)
    try:
        yield
    finally:
        _PRINCIPAL.reset(token)


@contextlib.contextmanager
def expect_refusal() -> Iterator[None]:
    """Calls in the body try what must be refused (a test of the policies): their refusals are
    recorded as expected, not reported as paths AWS would refuse."""
    token = _EXPECTED.set(True)
    try:
        yield
    finally:
        _EXPECTED.reset(token)


def as_principal[**P, R](principal: str, function: Callable[P, R]) -> Callable[P, R]:
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        with acting_as(principal):
            return function(*args, **kwargs)

    return wrapped


# --- setting up the principals in the local cloud ---------------------------------------------------

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def _assume(session: Any, role_arn: str, name: str) -> Any:
    from botocore.credentials import Credentials

    got = session.client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName=name[:64], DurationSeconds=43200
    )
    c = got["Credentials"]
    return Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])


def function_principal(
    session: Any, stage: str, prefix: str, function: str, account: str, region: str
) -> Principal:
    """A Lambda function's role in the local cloud's IAM, with the policy that deploys (rendered for
    the local cloud's account and region, as ``make deploy`` renders it for yours), assumed."""
    from mlops import policies

    document = policies.render(stage, function, prefix=prefix, tracing=False, account=account, region=region)
    iam = session.client("iam")
    role = f"{prefix}-{stage}-{function}"[:64]
    try:
        arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName=function, PolicyDocument=json.dumps(document))
    return Principal(function, {function: document}, _assume(session, arn, function), arn)


def role_principal(session: Any, name: str, role: str) -> Principal:
    """A role the data-plane template created (a job's), with its inline policies as deployed."""
    iam = session.client("iam")
    arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    documents = {}
    for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
        documents[policy] = _document(document)
    return Principal(name, documents, _assume(session, arn, name), arn)


def _document(stored: Any) -> dict[str, Any]:
    """A policy document as IAM returns it. moto's CloudFormation stores a template's inline policy
    as the text of a Python dict (single quotes), not as JSON."""
    if not isinstance(stored, str):
        return dict(stored)
    try:
        return dict(json.loads(stored))
    except ValueError:
        return dict(ast.literal_eval(stored))


def stage_account(
    session: Any, settings: Any, resources: Mapping[str, str], region: str, account: str
) -> Account:
    """The stage key and what it encrypts, read from the local cloud as deployed."""
    kms = session.client("kms")
    key_id = resources.get("DataKey", "")
    key_arn, tags = "", tuple[tuple[str, str], ...]()
    if key_id:
        # (moto's DescribeKey fails on a key its CloudFormation created: the ARN is built instead.)
        key_arn = key_id if key_id.startswith("arn:") else f"arn:aws:kms:{region}:{account}:key/{key_id}"
        listed = kms.list_resource_tags(KeyId=key_id)["Tags"]
        tags = tuple(sorted((t["TagKey"], t["TagValue"]) for t in listed))
    s3, sqs, sns = session.client("s3"), session.client("sqs"), session.client("sns")
    buckets = set()
    for bucket in (settings.data_bucket, settings.models_bucket):
        with contextlib.suppress(Exception):
            rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
            if any(r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" for r in rules):
                buckets.add(bucket)
    queues = set()
    for url in sqs.list_queues(QueueNamePrefix=f"{settings.prefix}-{settings.stage}-").get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["KmsMasterKeyId"])["Attributes"]
        if attributes.get("KmsMasterKeyId"):
            queues.add(url.rsplit("/", 1)[-1])
    topics = set()
    for topic in sns.list_topics().get("Topics", []):
        attributes = sns.get_topic_attributes(TopicArn=topic["TopicArn"])["Attributes"]
        if attributes.get("KmsMasterKeyId"):
            topics.add(topic["TopicArn"].rsplit(":", 1)[-1])
    return Account(
        region=region,
        account=account,
        key_arn=key_arn,
        key_tags=tags,
        encrypted_buckets=frozenset(buckets),
        encrypted_queues=frozenset(queues),
        encrypted_topics=frozenset(topics),
        encrypted_parameter_paths=(settings.tokens_path + "/",),
    )


# --- child processes: jobs and workers ---------------------------------------------------------------

# Set by the local cloud in its environment, so inherited by every child it starts: the folder with
# one file per principal (policies, account, credentials). The local job launchers then start their
# children through ``python -m mlops.localiam --as <principal> -m <module> ...``.
DIR_ENV = "MLOPS_IAM_DIR"


def write_principals(iam: LocalIam, directory: Path) -> None:
    """One file per principal, for the children that run as one (the folder is the local cloud's)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, p in iam.principals.items():
        frozen = p.credentials.get_frozen_credentials() if p.credentials else None
        spec = {
            "principal": name,
            "role_arn": p.role_arn,
            "policies": p.policies,
            "account": iam.account.to_json(),
            "credentials": [frozen.access_key, frozen.secret_key, frozen.token] if frozen else None,
        }
        path = directory / f"{name}.json"
        path.write_text(json.dumps(spec))
        path.chmod(0o600)


def calls_file(directory: Path, principal: str) -> Path:
    return directory / f"{principal}.calls.jsonl"


def child_calls(directory: Path) -> list[dict[str, Any]]:
    """What the children (jobs, workers) recorded."""
    calls = []
    for path in sorted(directory.glob("*.calls.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):  # a child killed mid-line
                calls.append(json.loads(line))
    return calls


class _CallSink:
    """Appends each call of a child to its principal's calls file as it happens (a worker may be
    killed at any moment: chaos tests do)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def __call__(self, call: Call) -> None:
        line = json.dumps(_call_json(call)) + "\n"
        with self._lock, self._path.open("a", encoding="utf-8") as out:
            out.write(line)


def install_as(principal: str, directory: Path) -> LocalIam:
    """In a child process: become ``principal`` (its credentials, its policy, its calls recorded)."""
    spec = json.loads((directory / f"{principal}.json").read_text())
    if spec["credentials"]:
        key, secret, token = spec["credentials"]
        os.environ.update(
            {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token}
        )
    iam = LocalIam(
        Account.from_json(spec["account"]),
        sink=_CallSink(calls_file(directory, principal)),
        process_principal=principal,
    )
    iam.add(Principal(principal, spec["policies"], None, spec["role_arn"]))
    install(iam)
    return iam


def main(argv: list[str]) -> None:
    """``python -m mlops.localiam --as P -m module args...`` (or ``--as P script.py args...``)."""
    if len(argv) < 3 or argv[0] != "--as":
        raise SystemExit("usage: python -m mlops.localiam --as PRINCIPAL (-m MODULE | SCRIPT) [ARGS...]")
    principal, rest = argv[1], argv[2:]
    install_as(principal, Path(os.environ[DIR_ENV]))
    if rest[0] == "-m":
        sys.argv = [rest[1], *rest[2:]]
        runpy.run_module(rest[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(rest)
        runpy.run_path(rest[0], run_name="__main__")


# --- which statements the recorded calls need ---------------------------------------------------------


@dataclass(frozen=True)
class StatementUse:
    principal: str
    policy: str
    sid: str
    needed_by: tuple[str, ...]  # recorded calls (action on resource) refused without this statement
    runtime_only: bool  # only actions the Lambda service performs on the function's behalf
    unused_actions: tuple[str, ...] = ()  # actions of a needed statement that no recorded call needs


def _without(principal: Principal, policy: str, index: int, action: str | None = None) -> dict[str, Any]:
    """The principal's policies with one statement removed (or one action of it)."""
    document = principal.policies[policy]
    statements = as_list(document.get("Statement", []))
    kept: list[Any] = []
    for i, statement in enumerate(statements):
        if i != index:
            kept.append(statement)
        elif action is not None:
            rest = [a for a in as_list(statement["Action"]) if a != action]
            if rest:
                kept.append({**statement, "Action": rest})
    return {**principal.policies, policy: {**document, "Statement": kept}}


def _runtime_only(action: str) -> bool:
    return any(fnmatch.fnmatchcase(r.lower(), action.lower()) for r in RUNTIME_ACTIONS)


def statement_needs(
    principals: Mapping[str, Principal], calls: list[Mapping[str, Any]]
) -> list[StatementUse]:
    """For each statement of each principal's policies: the recorded allowed calls that would be
    refused if the statement were removed, and the actions of it that no call needs (the policy
    mutation test: one statement, or one action, removed at a time; computed instead of re-run)."""
    uses = []
    by_principal: dict[str, set[Request]] = {}
    for call in calls:
        if call["allowed"]:
            by_principal.setdefault(call["principal"], set()).add(
                Request(call["action"], call["resource"], tuple((k, v) for k, v in call["context"]))
            )
    for name, principal in principals.items():
        requests = by_principal.get(name, set())
        for policy, document in principal.policies.items():
            for index, statement in enumerate(as_list(document.get("Statement", []))):

                def refused(mutated: Mapping[str, Any], requests: set[Request] = requests) -> list[str]:
                    return sorted(
                        f"{r.action} {r.resource}" for r in requests if not evaluate(mutated, r).allowed
                    )

                needed = refused(_without(principal, policy, index))
                actions = [str(a) for a in as_list(statement.get("Action", []))]
                unused: list[str] = []
                if needed and len(actions) > 1:
                    unused = [
                        a
                        for a in actions
                        if not _runtime_only(a) and not refused(_without(principal, policy, index, a))
                    ]
                uses.append(
                    StatementUse(
                        name,
                        policy,
                        str(statement.get("Sid") or index),
                        tuple(needed),
                        bool(actions) and all(_runtime_only(a) for a in actions),
                        tuple(unused),
                    )
                )
    return uses


if __name__ == "__main__":
    main(sys.argv[1:])
