"""Shared fixtures. Fake credentials are set before any boto3 client exists; moto stands in for AWS.

The suite has one folder per layer (see tests/__init__.py); helpers shared by modules are in
tests/support.py, never imported from another test module.

* ``aws``: in-process moto (``mock_aws``) with the data-plane stack deployed (adapter and flow tests).
* ``atomic_writes``: the one lock giving in-process moto DynamoDB's atomic writes and isolated reads
  (concurrency tests).
* ``batch_stack``: the same stack with AWS Batch, which runs no containers (deploy and adapter tests).
* ``local_cloud``: a moto *server* on 127.0.0.1 with the stack, the Chalice app and the event
  runtime, as ``mlops up`` runs it (flow tests). One per module; tests use their own keys.

Property tests (hypothesis) run under the ``mlops`` profile below: derandomized, so every run tries
the same examples and a failure always reproduces.
"""

from __future__ import annotations

import os

# Before boto3 is imported anywhere: never reach a real account from the tests.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "MLOPS_STAGE": "local",
    # As the local stage sets it: reads open, changes authenticated (test_auth loads the app as
    # deployed stages have it too).
    "MLOPS_AUTH_READS": "false",
    "POWERTOOLS_METRICS_NAMESPACE": "ServerlessMLOps",
}.items():
    os.environ[_key] = _value
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402
from moto import mock_aws  # noqa: E402

from chalicelib.adapters import aws as aws_clients  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402


def _moto_retains_except_on_create() -> None:
    """moto 5.2.5 keeps a resource on stack deletion only for ``DeletionPolicy: Retain``; AWS also keeps
    one whose policy is ``RetainExceptOnCreate`` once its stack was created (infra/template.yaml's data
    resources). Give moto AWS's rule, so the destroy and resume rehearsals see what AWS would do."""
    from moto.cloudformation import parsing

    original = parsing.ResourceMap.delete
    if getattr(original, "_mlops_patched", False):
        return

    def delete(self: Any) -> None:
        for resource in self._resource_json_map.values():
            if resource.get("DeletionPolicy") == "RetainExceptOnCreate":
                resource["DeletionPolicy"] = "Retain"
        original(self)

    delete._mlops_patched = True  # type: ignore[attr-defined]
    parsing.ResourceMap.delete = delete  # type: ignore[method-assign]


_moto_retains_except_on_create()

# Property tests: the same examples on every run and machine (derandomized, no example database),
# few enough to keep the suite fast, and no deadline (a busy 2-core machine is slow, not wrong).
hypothesis_settings.register_profile(
    "mlops",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
hypothesis_settings.load_profile("mlops")


def _pin_hypothesis_constants() -> None:
    """Hypothesis also draws constants it finds in the project's loaded modules, so what a
    derandomized test generates would depend on which modules earlier tests happened to import
    (pytest-randomly shuffles them). Draw from its built-in constants only: the same examples in any
    order. (Internal API of the pinned version: the assertion fails loudly if it moves.)"""
    from hypothesis.internal.conjecture import providers

    assert callable(providers._get_local_constants)
    empty = providers._local_constants
    providers._get_local_constants = lambda: empty


_pin_hypothesis_constants()


def _reset_wiring() -> None:
    from chalicelib import auth, bootstrap

    bootstrap.reset()
    aws_clients.reset_clients()
    auth.reset_cache()


def _gateway_semantics() -> None:
    # chalice.test.Client's local gateway answers an authorizer's "Unauthorized" as API Gateway does (401).
    from mlops.localapi import install_gateway_auth_semantics

    install_gateway_auth_semantics()


_gateway_semantics()


def _deployed_stack() -> Iterator[Settings]:
    from mlops.cfn import deploy_stage

    with mock_aws():
        _reset_wiring()
        settings = Settings.for_stage("local")
        deploy_stage(settings)
        yield settings
        _reset_wiring()


@pytest.fixture
def aws() -> Iterator[Settings]:
    """In-process moto with the data-plane stack of the local stage deployed."""
    yield from _deployed_stack()


@pytest.fixture(scope="module")
def aws_module() -> Iterator[Settings]:
    """The same, shared by a module's tests that only read (faster: deployed once)."""
    yield from _deployed_stack()


@pytest.fixture
def atomic_writes(monkeypatch):
    """DynamoDB applies each conditional write and each transaction atomically, and no read sees one
    half done; in-process moto does not serialise concurrent requests, so give it the isolation the
    real service guarantees: the local cloud's lock, undone after the test."""
    from mlops.localcloud import serialise_dynamodb

    serialise_dynamodb(monkeypatch.setattr)


@pytest.fixture(scope="module")
def batch_stack() -> Iterator[tuple[Settings, dict[str, str]]]:
    """The local stage's stack in in-process moto with Batch configured not to use Docker.

    One deploy per module (about a second): the tests only read, or submit jobs they find by id.
    """
    from mlops.cfn import deploy_stage

    with mock_aws(config={"batch": {"use_docker": False}}):
        aws_clients.reset_clients()
        settings = Settings.for_stage("local")
        resources = deploy_stage(settings)
        yield settings, resources
        aws_clients.reset_clients()


@pytest.fixture
def tokens(aws: Settings) -> dict[str, dict[str, str]]:
    """One API token per role in the stack's SSM path: role -> headers carrying it (JSON body)."""
    from chalicelib.adapters.aws.tokens import SsmTokenRecords
    from chalicelib.auth import ROLES, TokenStore

    store = TokenStore(SsmTokenRecords.for_settings(aws))
    out = {}
    for role, name in zip(ROLES, ("victor", "rita", "alice", "ops"), strict=True):
        token, _ = store.create(name, role, created_by="tests")
        out[role] = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return out


IAM_RECORD = Path(__file__).resolve().parents[1] / "build" / "iam"


def record_iam_calls(cloud: Any) -> None:
    """Keep what the cloud's functions, jobs and workers called, with their policies (one folder per
    cloud: each has its own key and names). `make test` ends with `mlops iam-report` over them all:
    which statement of which policy each call needed."""
    if cloud.iam is None:
        return
    from mlops import iamreport

    iamreport.write_record(
        IAM_RECORD / f"cloud-{cloud.port}",
        {name: p.policies for name, p in cloud.iam.principals.items()},
        cloud.iam_calls(),
    )


@pytest.fixture(scope="module")
def local_cloud() -> Iterator[Any]:
    """The local cloud as `mlops up` runs it, on free ports, for one test module.

    It sets AWS_ENDPOINT_URL and the stage's variables in os.environ (handlers read them at call
    time); everything is restored afterwards so in-process moto tests are unaffected."""
    from mlops.localcloud import LocalCloud, free_port

    saved = dict(os.environ)
    _reset_wiring()
    cloud = LocalCloud(port=free_port(), api_port=free_port())
    cloud.start()
    yield cloud
    record_iam_calls(cloud)
    cloud.stop()
    os.environ.clear()
    os.environ.update(saved)
    _reset_wiring()
