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
