"""The local cloud takes bursts (issue 18): 50 requests sent at the same moment are all answered.

Chalice's dev server listened with a backlog of 5 (``socketserver.TCPServer``'s default): in a burst
the kernel's accept queue overflowed and 20-70% of the connections were reset. A client of the local
API or of the AWS endpoint (a script, the console's page loading its charts) must never see that.
"""

from __future__ import annotations

import http.client
import threading
from typing import Any
from urllib.parse import urlsplit

import pytest

from chalicelib import bootstrap
from chalicelib.adapters.aws.tokens import SsmTokenRecords
from chalicelib.auth import TokenStore

BURST = 50
HANG_S = 120  # a guard against a hang only: a busy 2-core machine answers 50 requests far sooner


def _burst(url: str, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> list[Any]:
    """``BURST`` requests on fresh connections, released together: each one's status, or the
    exception that ended it (a reset connection, a dropped one)."""
    parts = urlsplit(url)
    gate = threading.Barrier(BURST)
    outcomes: list[Any] = [None] * BURST

    def one(i: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HANG_S)
        try:
            gate.wait()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            outcomes[i] = response.status
        except Exception as exc:  # what the test is about: recorded, then asserted on
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_S)
    return outcomes


def _failures(outcomes: list[Any]) -> list[str]:
    return [repr(o) for o in outcomes if not isinstance(o, int)]


@pytest.fixture(scope="module")
def viewer_token(local_cloud) -> str:
    token, _ = TokenStore(SsmTokenRecords.for_settings(bootstrap.settings())).create(
        "burst", "viewer", created_by="tests", replace=True
    )
    return token


def test_a_burst_of_50_health_checks_is_answered_in_full(local_cloud):
    outcomes = _burst(str(local_cloud.api_url), "GET", "/health", {})

    assert _failures(outcomes) == []
    assert outcomes == [200] * BURST


def test_a_burst_of_50_authenticated_reads_is_answered_in_full(local_cloud, viewer_token):
    headers = {"Authorization": f"Bearer {viewer_token}"}
    outcomes = _burst(str(local_cloud.api_url), "GET", "/models", headers)

    assert _failures(outcomes) == []
    assert outcomes == [200] * BURST


def test_a_burst_of_50_requests_through_the_token_authorizer_is_answered_in_full(local_cloud, viewer_token):
    # A route that always runs the authorizer (a change): a viewer's token is checked, then refused
    # the route (403), with no connection lost on the way.
    headers = {"Authorization": f"Bearer {viewer_token}", "Content-Type": "application/json"}
    outcomes = _burst(
        str(local_cloud.api_url), "POST", "/models/burst/rollback", headers, body=b'{"reason": "burst"}'
    )

    assert _failures(outcomes) == []
    assert outcomes == [403] * BURST


def test_a_burst_of_50_aws_calls_is_answered_in_full(local_cloud):
    # DynamoDB ListTables as the SDK sends it (moto reads the service from the signature's scope).
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.ListTables",
        "Authorization": (
            "AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host;x-amz-target, Signature=0"
        ),
    }
    outcomes = _burst(local_cloud.endpoint, "POST", "/", headers, body=b"{}")

    assert _failures(outcomes) == []
    assert outcomes == [200] * BURST
