"""Which requests to the local AWS endpoint the local cloud's state store treats as changes
(held until saved), reads (never held) or transient changes (SQS receives: not saved)."""

from __future__ import annotations

import io
import urllib.parse

import pytest

from mlops.localstate import access_key, classify


def _environ(method: str, path: str = "/", target: str | None = None, form: dict[str, str] | None = None,
             query: str = "", authorization: str = "") -> dict[str, object]:  # fmt: skip
    body = urllib.parse.urlencode(form).encode() if form is not None else b""
    environ: dict[str, object] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8" if form is not None else "",
        "wsgi.input": io.BytesIO(body),
    }
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    if authorization:
        environ["HTTP_AUTHORIZATION"] = authorization
    return environ


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("DynamoDB_20120810.GetItem", "read"),
        ("DynamoDB_20120810.Query", "read"),
        ("DynamoDB_20120810.Scan", "read"),
        ("DynamoDB_20120810.BatchGetItem", "read"),
        ("DynamoDB_20120810.PutItem", "write"),
        ("DynamoDB_20120810.UpdateItem", "write"),
        ("DynamoDB_20120810.TransactWriteItems", "write"),
        ("AmazonSQS.SendMessage", "write"),
        ("AmazonSQS.DeleteMessage", "write"),
        ("AmazonSQS.ChangeMessageVisibility", "write"),
        ("AmazonSQS.ReceiveMessage", "transient"),
        ("AmazonSQS.GetQueueAttributes", "read"),
        ("Logs_20140328.PutLogEvents", "write"),
        ("AmazonSSM.PutParameter", "write"),
        ("AmazonSSM.GetParametersByPath", "read"),
        ("TrentService.Decrypt", "read"),
        ("AmazonSSM.SomeFutureAction", "write"),  # unknown: treated as a change
    ],
)
def test_json_protocol_requests_are_classified_by_their_action(target, kind):
    assert classify(_environ("POST", target=target)) == kind


def test_query_protocol_action_is_read_from_the_form_and_the_body_is_left_for_moto():
    environ = _environ("POST", form={"Action": "CreateRole", "RoleName": "r"})
    assert classify(environ) == "write"
    assert environ["wsgi.input"].read() == b"Action=CreateRole&RoleName=r"  # type: ignore[attr-defined]
    assert classify(_environ("POST", form={"Action": "ListRoles"})) == "read"
    assert classify(_environ("GET", query="Action=GetRole&RoleName=r")) == "read"


@pytest.mark.parametrize(
    ("method", "kind"),
    [("GET", "read"), ("HEAD", "read"), ("PUT", "write"), ("POST", "write"), ("DELETE", "write")],
)
def test_rest_requests_are_classified_by_their_method(method, kind):
    assert classify(_environ(method, path="/bucket/incoming/a.csv")) == kind


def test_moto_api_calls_are_changes():
    assert classify(_environ("GET", path="/moto-api/reset")) == "write"


def test_the_access_key_is_read_from_the_signature_or_a_presigned_url():
    signed = "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261201/us-east-1/s3/aws4_request, SignedHeaders=host"
    assert access_key(_environ("GET", authorization=signed)) == "ASIAEXAMPLE"
    presigned = "X-Amz-Credential=AKIDPRESIGNED%2F20261201%2Fus-east-1%2Fs3%2Faws4_request"
    assert access_key(_environ("GET", query=presigned)) == "AKIDPRESIGNED"
    assert access_key(_environ("GET")) == ""
