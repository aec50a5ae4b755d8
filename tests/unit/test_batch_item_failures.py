"""Lambda's partial batch response for SQS, as the local event runtime applies it: which messages are
deleted and which come back."""

from __future__ import annotations

from mlops.runtime import build_sqs_event, to_delete


def test_to_delete_keeps_failed_records_and_rejects_unknown_identifiers():
    event = build_sqs_event(
        [{"MessageId": m, "ReceiptHandle": f"rh-{m}", "Body": ""} for m in ("m1", "m2")],
        "arn:aws:sqs:us-east-1:1:q",
        "us-east-1",
    )
    assert to_delete(event, None) == (["rh-m1", "rh-m2"], [])
    assert to_delete(event, {"batchItemFailures": []}) == (["rh-m1", "rh-m2"], [])
    assert to_delete(event, {"batchItemFailures": [{"itemIdentifier": "m2"}]}) == (["rh-m1"], ["m2"])
    # Lambda fails the whole batch when an identifier is not in it, or empty.
    assert to_delete(event, {"batchItemFailures": [{"itemIdentifier": "zzz"}]}) == ([], ["m1", "m2"])
    assert to_delete(event, {"batchItemFailures": [{"itemIdentifier": ""}]}) == ([], ["m1", "m2"])


def _notification(key: str) -> str:
    import json

    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-12-01T00:00:00.000Z",
        "s3": {"bucket": {"name": "data"}, "object": {"key": key, "size": 1, "eTag": "e"}},
    }
    return json.dumps({"Records": [record]})


def test_concurrent_invocations_of_one_handler_each_report_their_own_failures():
    """The local event runtime runs a function's batches at once in one process (as Lambda runs
    them in several): one batch's failed record must not be lost to, or reported by, another's."""
    import threading

    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    from chalicelib.ingest.handler import IdempotentIngest, handle_ingest_batch
    from mlops.runtime import LambdaContext

    def lambda_context():
        return LambdaContext("serverless-mlops-local-ingest_upload", 60, 128, "us-east-1", "1")

    first_waiting, second_done = threading.Event(), threading.Event()

    def ingest(notification):
        if notification["key"] == "incoming/a/slow.csv":  # after the first batch's failed record
            first_waiting.set()
            assert second_done.wait(30), "the second invocation never finished"
        return {"status": "valid"}

    once = IdempotentIngest(ingest, IdempotencyConfig())

    def batch(*items):
        return build_sqs_event(
            [{"MessageId": m, "ReceiptHandle": f"rh-{m}", "Body": body} for m, body in items],
            "arn:aws:sqs:us-east-1:1:q",
            "us-east-1",
        )

    responses = {}

    def first():
        event = batch(("bad", "not an S3 notification"), ("slow", _notification("incoming/a/slow.csv")))
        responses["first"] = handle_ingest_batch(event, lambda_context(), once)

    thread = threading.Thread(target=first)
    thread.start()
    assert first_waiting.wait(30)
    responses["second"] = handle_ingest_batch(
        batch(("good", _notification("incoming/a/good.csv"))), lambda_context(), once
    )
    second_done.set()
    thread.join(60)
    assert responses["second"] == {"batchItemFailures": []}
    assert responses["first"] == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
