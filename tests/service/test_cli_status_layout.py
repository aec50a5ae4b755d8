"""``mlops status`` leads with what a person acts on (issue 18): a DLQ holding messages or an alarm
firing, then the latest uploads with their ids, verdicts and drift, the runs, the models; the
stack's ~60 resources only with ``--resources``. (The stack in in-process moto.)"""

from __future__ import annotations

import io

import boto3

from chalicelib import bootstrap
from chalicelib.ingest.uploads import Upload
from chalicelib.settings import dlq_name
from mlops.status import print_runs, print_uploads, report


def _status(settings, resources: bool = False) -> str:
    session = boto3.session.Session()
    from mlops.cfn import stack_name

    summaries = session.client("cloudformation").list_stack_resources(
        StackName=stack_name(settings.prefix, settings.stage)
    )["StackResourceSummaries"]
    out = io.StringIO()
    report(session, settings, summaries, resources, out)
    return out.getvalue()


def _upload(n: int, **fields) -> Upload:
    values = {
        "upload_id": f"{n:024x}",
        "bucket": "data",
        "key": f"incoming/sales/day{n}.csv",
        "dataset": "sales",
        "version_id": "v",
        "etag": "e",
        "size": 100,
        "sha256": "0" * 64,
        "event_time": f"2026-12-01T10:{n:02d}:00Z",
        "recorded_at": f"2026-12-01T10:{n:02d}:01+00:00",
        "status": "valid",
        "rows": 60,
        "drift": "stable",
    }
    return Upload(**{**values, **fields})


def _sections(text: str) -> list[str]:
    """The first word of each section (a line after a blank one)."""
    lines = text.splitlines()
    return [lines[i + 1].split(":")[0].split()[0] for i, line in enumerate(lines[:-1]) if not line.strip()]


def test_status_leads_with_attention_then_uploads_runs_models_and_lists_no_resources(aws):
    text = _status(aws)

    assert _sections(text)[:4] == ["nothing", "uploads", "runs", "models"], text
    assert "AWS::" not in text  # no resource table
    assert "`mlops status --resources` lists them" in text.splitlines()[-1]
    assert len(text.splitlines()) < 20, text  # an empty cloud's status fits a screen


def test_status_with_resources_lists_the_stack_after_everything_else(aws):
    text = _status(aws, resources=True)

    table = text.index("resource ")
    assert text.index("uploads:") < text.index("models:") < table
    assert "AWS::S3::Bucket" in text[table:] and "AWS::SQS::Queue" in text[table:]
    assert "--resources` lists them" not in text


def test_a_dlq_holding_a_message_is_the_first_thing_status_says(aws):
    ingest = aws.consumed_queues[next(iter(aws.consumed_queues))]
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=dlq_name(ingest))["QueueUrl"], MessageBody="{}")

    text = _status(aws)

    first = text.strip().splitlines()
    assert first[0].startswith(f"!! DLQ {dlq_name(ingest)} holds 1 message(s)"), text
    assert "aws sqs receive-message" in first[1]
    assert "nothing needs attention" not in text


def test_status_shows_the_latest_uploads_newest_first_with_ids_verdicts_and_drift(aws):
    ledger = bootstrap.uploads()
    for n in range(1, 13):
        ledger.record(_upload(n, drift="drifted" if n == 12 else "stable"))
    ledger.record(_upload(13, status="invalid", rows=None, drift=None, issue_codes=["missing_column"]))

    text = _status(aws)

    lines = text.splitlines()
    head = lines.index("uploads: 13 recorded, the latest 10:")
    shown = lines[head + 1 : head + 11]
    assert [line.split()[0] for line in shown] == [f"{n:024x}" for n in range(13, 3, -1)]
    assert "invalid" in shown[0] and "missing_column" in shown[0] and "drift -" in shown[0]
    assert "valid" in shown[1] and "drift drifted" in shown[1] and "60 rows" in shown[1]
    assert "s3://data/incoming/sales/day12.csv" in shown[1]


def test_uploads_and_runs_sections_say_when_there_are_none():
    out = io.StringIO()
    print_uploads([], out)
    print_runs([], out)
    assert out.getvalue().split("\n")[1:4:2] == ["uploads: 0 recorded", "runs: 0 in flight, 0 finished"]


def test_runs_in_flight_come_before_the_latest_finished():
    runs = [
        {"run_id": "run-old", "status": "succeeded", "created_at": "2026-12-01T09:00:00"},
        {"run_id": "run-new", "status": "failed", "created_at": "2026-12-01T11:00:00", "error": "no data"},
        {"run_id": "run-going", "status": "running", "created_at": "2026-12-01T10:00:00"},
    ]
    out = io.StringIO()
    print_runs(runs, out)
    lines = out.getvalue().strip().splitlines()
    assert lines[0] == "runs: 1 in flight, 2 finished"
    assert [line.split()[0] for line in lines[1:]] == ["run-going", "run-new", "run-old"]
    assert "no data" in lines[2]
