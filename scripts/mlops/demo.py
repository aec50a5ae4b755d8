"""``mlops demo``: the end-to-end scenario on a fresh local cloud, one step at a time.

Each step prints what happened and checks it; the demo exits 0 only if every check held. The
data is real (scikit-learn's bundled breast-cancer set) cut into daily uploads. So far the
scenario covers the foundation, validation and retraining: contracts, uploads flowing S3 ->
notification -> ingest queue -> event runtime -> ``ingest_upload``, reports, quarantine, drift,
duplicates; retrain triggers, runs trained in a local "spot" job, ONNX candidates with parity.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from mlops.datasets import breast_cancer_contract, breast_cancer_rows, drifted, to_csv
from mlops.localcloud import PROJECT_DIR, LocalCloud, free_port

DATASET = "breast_cancer"


class Demo:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def step(self, title: str) -> None:
        print(f"\n== {title}", flush=True)

    def check(self, ok: bool, what: str) -> bool:
        print(f"   [{'ok' if ok else 'FAIL'}] {what}", flush=True)
        if not ok:
            self.failures.append(what)
        return ok


def wait_for(predicate: Callable[[], Any], timeout_s: float = 30.0, interval_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def uploads_plan() -> dict[str, tuple[bytes, str]]:
    """key -> (bytes, what it is). Three good days, a malformed day, a drifted day."""
    header, rows = breast_cancer_rows()
    plan = {}
    for day, (lo, hi) in enumerate([(0, 110), (110, 220), (220, 330)], start=1):
        plan[f"incoming/{DATASET}/2026-11-0{day}.csv"] = (to_csv(header, rows[lo:hi]), "a good day")
    bad = [list(r) for r in rows[330:440]]
    bad[3][-1] = "2"  # a diagnosis the contract does not allow
    bad[10][5] = "nan"  # NaN in a measurement
    bad[20][0] = "=cmd|' /C calc'!A0"  # spreadsheet formula injection in the id
    bad[30][0] = bad[31][0]  # the same patient twice
    plan[f"incoming/{DATASET}/2026-11-04.csv"] = (to_csv(header, bad), "malformed")
    plan[f"incoming/{DATASET}/2026-11-05.csv"] = (
        to_csv(header, drifted(header, rows[440:])),
        "drifted (instrument miscalibrated)",
    )
    return plan


def run_demo(verbose: bool = False) -> int:
    demo = Demo()
    log_path = PROJECT_DIR / ".mlops" / "demo-functions.log"
    log_path.parent.mkdir(exist_ok=True)
    log_path.write_text("")
    demo.step("Starting the local cloud (moto server, data-plane stack, API, event runtime)")
    cloud = LocalCloud(port=free_port(), api_port=free_port(), function_log=None if verbose else log_path)
    started = time.monotonic()
    with cloud:
        import boto3

        from chalicelib.ingest import UploadLedger, upload_id_for
        from chalicelib.settings import Settings

        settings = Settings.from_env()
        s3, sqs = boto3.client("s3"), boto3.client("sqs")
        ledger = UploadLedger(settings.uploads_table)
        api = cloud.api_url
        print(f"   endpoint {cloud.endpoint}, API {api}, up in {time.monotonic() - started:.1f}s")
        demo.check(
            {"DataBucket", "ModelsBucket", "IngestQueue", "IngestDLQ", "UploadsTable", "IdempotencyTable"}
            <= set(cloud.resources),
            f"the data-plane template deployed into moto ({len(cloud.resources)} resources)",
        )

        demo.step(f"The data owner stores the contract of {DATASET!r} (PUT /datasets/{DATASET}/contract)")
        contract = breast_cancer_contract()
        broken = json.loads(json.dumps(contract))
        broken["columns"][1]["min"] = "zero"
        status, body = http("PUT", f"{api}/datasets/{DATASET}/contract", broken)
        demo.check(
            status == 400 and "columns[1].min" in body.get("Message", ""),
            f"a broken contract is refused: {status} {body.get('Message')}",
        )
        status, body = http("PUT", f"{api}/datasets/{DATASET}/contract", contract)
        demo.check(
            status == 200,
            f"contract stored at {body.get('key')} ({len(contract['columns'])} columns, target 'diagnosis')",
        )

        demo.step("Uploading five daily files of real data (scikit-learn's breast-cancer set)")
        plan = uploads_plan()
        ids: dict[str, str] = {}
        for key, (data, what) in plan.items():
            put = s3.put_object(Bucket=settings.data_bucket, Key=key, Body=data)
            ids[key] = upload_id_for(settings.data_bucket, key, put["VersionId"])
            print(f"   put {key} ({len(data):,} bytes, {data.count(b'\n') - 1} rows): {what}")

        demo.step("Each upload is validated as it arrives: reports, validated/ or quarantine/")
        entries = wait_for(
            lambda: all(ledger.get(i) for i in ids.values()) and [ledger.get(i) for i in ids.values()]
        )
        if not demo.check(bool(entries), "every upload reached ingest_upload and the ledger"):
            return _finish(demo)
        by_key = {e.key: e for e in entries}
        _print_table(s3, settings.data_bucket, entries)
        days = list(plan)
        demo.check(all(by_key[k].status == "valid" for k in days[:3]), "the three good days are valid")
        demo.check(by_key[days[0]].drift == "reference", "the first valid upload became the drift reference")
        demo.check(all(by_key[k].drift == "stable" for k in days[1:3]), "the next good days show no drift")
        bad = by_key[days[3]]
        demo.check(
            bad.status == "invalid"
            and {
                "UNKNOWN_CATEGORY",
                "NOT_ALLOWED_VALUE",
                "NON_FINITE_NUMBER",
                "FORMULA_INJECTION",
                "DUPLICATE_ROW_ID",
            }
            & set(bad.issue_codes or [])
            >= {"NON_FINITE_NUMBER", "FORMULA_INJECTION", "DUPLICATE_ROW_ID"},
            f"the malformed day is quarantined: {', '.join(bad.issue_codes or [])}",
        )
        demo.check(
            by_key[days[4]].status == "valid" and by_key[days[4]].drift == "drifted",
            "the drifted day is valid but flagged as drifted",
        )

        demo.step("What the malformed file's report says (values of confidential columns are masked)")
        report = json.loads(s3.get_object(Bucket=settings.data_bucket, Key=bad.report_key)["Body"].read())
        for issue in report["issues"]:
            print(
                f"   {issue['code']:<20} column {issue['column']!s:<16} x{issue['count']:<3} row {issue['row']!s:<4} {issue['message'][:70]}"
            )
            print(f"   {'':<20} fix: {issue['fix']}")
        confidential = {
            c["name"] for c in contract["columns"] if c["classification"] in ("confidential", "pii")
        }
        leaked = [
            i
            for i in report["issues"]
            if i["column"] in confidential and i.get("example") not in (None, "***")
        ]
        demo.check(not leaked, "no value of a confidential column appears in the report")

        demo.step("The drift report of the drifted day")
        drift_report = json.loads(
            s3.get_object(Bucket=settings.data_bucket, Key=by_key[days[4]].report_key)["Body"].read()
        )["drift"]
        print(
            f"   verdict {drift_report['verdict']}: {len(drift_report['drifted_features'])} of {len(drift_report['features'])} features drifted (threshold {drift_report['threshold']:.0%})"
        )
        for name in drift_report["drifted_features"][:4]:
            f = drift_report["features"][name]
            print(f"   {name:<24} PSI {f['psi']:.2f}  KS p {f['ks_pvalue']:.1e}  {f['reasons'][0]}")

        demo.step("Governance: copies are tagged, originals are never touched")
        tagged = True
        for entry in entries:
            tagset = {
                t["Key"]: t["Value"]
                for t in s3.get_object_tagging(Bucket=settings.data_bucket, Key=entry.output_key)["TagSet"]
            }
            tagged &= (
                tagset.get("dataset") == DATASET
                and tagset.get("stage") in ("validated", "quarantine")
                and "classification" in tagset
            )
        demo.check(
            tagged, "every validated/ and quarantine/ copy carries dataset, classification and stage tags"
        )
        untouched = all(
            len(s3.list_object_versions(Bucket=settings.data_bucket, Prefix=key).get("Versions", [])) == 1
            and s3.get_object(Bucket=settings.data_bucket, Key=key)["Body"].read() == data
            for key, (data, _) in plan.items()
        )
        demo.check(untouched, "each original upload still has exactly one version, byte for byte as uploaded")
        rules = s3.get_bucket_lifecycle_configuration(Bucket=settings.data_bucket)["Rules"]
        print(
            "   retention: "
            + ", ".join(
                f"{r['Filter'].get('Prefix')} {r['Expiration']['Days']}d" for r in rules if "Expiration" in r
            )
            + "; validated/ is kept"
        )

        demo.step(
            "The same bytes uploaded again under another name, and the same event delivered 3 more times"
        )
        again = f"incoming/{DATASET}/2026-11-02-resent.csv"
        put = s3.put_object(Bucket=settings.data_bucket, Key=again, Body=plan[days[1]][0])
        again_id = upload_id_for(settings.data_bucket, again, put["VersionId"])
        entry = wait_for(lambda: ledger.get(again_id))
        demo.check(
            entry is not None and entry.status == "duplicate" and entry.duplicate_of == ids[days[1]],
            f"{again}: {entry and entry.problem}",
        )
        queue_url = sqs.get_queue_url(QueueName=settings.ingest_queue)["QueueUrl"]
        head = s3.head_object(Bucket=settings.data_bucket, Key=days[0])
        before = len(ledger.scan())
        for _ in range(3):
            sqs.send_message(
                QueueUrl=queue_url, MessageBody=json.dumps(_notification(settings.data_bucket, days[0], head))
            )
        demo.check(
            bool(wait_for(lambda: _queue_empty(sqs, queue_url), timeout_s=20)),
            "the redelivered events were consumed",
        )
        demo.check(
            len(ledger.scan()) == before, f"the ledger still holds {before} entries: duplicates had no effect"
        )

        demo.step("A file outside incoming/<dataset>/ is recorded with the reason, not lost")
        stray = "incoming/forgot-the-dataset.csv"
        put = s3.put_object(Bucket=settings.data_bucket, Key=stray, Body=plan[days[0]][0])
        stray_entry = wait_for(
            lambda: ledger.get(upload_id_for(settings.data_bucket, stray, put["VersionId"]))
        )
        demo.check(
            stray_entry is not None and stray_entry.status == "unroutable",
            f"{stray}: {stray_entry and stray_entry.problem}",
        )

        demo.step(
            "Retraining: valid data is announced; 300 new rows, or drift, start a run on (local) spot capacity"
        )
        from chalicelib.training.runs import RunsStore

        runs = RunsStore(settings.runs_table)
        first = _follow_run(demo, runs, lambda r: any("new valid rows" in x for x in r.get("reasons", [])))
        if first:
            print(f"   reasons: {'; '.join(first['reasons'])}")
            print(
                f"   {first['family']}: holdout {first['primary_metric']} {first['primary_value']:.4f}, "
                f"parity max |ORT - sklearn| {first['parity_max_abs_diff']:.1e} on {first.get('capacity')} capacity, "
                f"{first['seconds']:.1f}s, attempt {first['attempts']}"
            )
            demo.check(
                first["parity_max_abs_diff"] <= 1e-5 and first["primary_value"] > 0.9,
                "the candidate is accurate and its ONNX export matches scikit-learn",
            )
            manifest_key = f"{first['candidate_prefix']}manifest.json"
            manifest = json.loads(
                s3.get_object(Bucket=settings.models_bucket, Key=manifest_key)["Body"].read()
            )
            print(
                f"   candidate s3://{settings.models_bucket}/{first['candidate_prefix']}: "
                + ", ".join(a["name"] for a in manifest["artifacts"])
                + ", manifest.json (last)"
            )
        second = _follow_run(demo, runs, lambda r: any("drifted" in x for x in r.get("reasons", [])))
        if second:
            coalesced = second.get("trigger", {}).get("kind") == "run_finished"
            print(
                f"   reasons: {'; '.join(second['reasons'])}"
                + (" (the drift trigger waited for the first run: coalesced)" if coalesced else "")
            )
        status, body = http(
            "POST", f"{api}/datasets/{DATASET}/retrain", {"reason": "a person asked for a fresh model"}
        )
        demo.check(
            status in (202, 409),
            f"POST /datasets/{DATASET}/retrain -> {status} {body.get('run_id') or body.get('Message')}",
        )
        if status == 202:
            requested = _follow_run(demo, runs, lambda r: r["run_id"] == body["run_id"])
            demo.check(
                bool(requested) and requested["data_hash"] == (second or first or {}).get("data_hash"),
                "the requested run trained on the same data snapshot (same data hash)",
            )
        status, run_doc = http("GET", f"{api}/runs/{(first or {}).get('run_id', 'none')}")
        demo.check(
            status == 200 and run_doc.get("status") == "succeeded",
            f"GET /runs/{{id}} -> {run_doc.get('status')}",
        )

        demo.step("The ledger over the HTTP API (GET /uploads/{id})")
        status, body = http("GET", f"{api}/uploads/{ids[days[3]]}")
        demo.check(
            status == 200 and body.get("status") == "invalid",
            f"GET /uploads/{ids[days[3]]} -> {body.get('status')}, {body.get('output_key')}",
        )

        demo.step("Queues after the run")
        from mlops.status import queue_depths

        for name, visible, in_flight, dlq in queue_depths(sqs, settings.queues):
            note = (
                "  (candidate manifests wait for the registry stage)"
                if name == settings.promotion_queue and visible
                else ""
            )
            print(f"   {name:<40} visible {visible}  in flight {in_flight}  DLQ {dlq}{note}")
        demo.check(_queue_empty(sqs, queue_url), "nothing left in the ingest queue, nothing in its DLQ")
        demo.check(
            _queue_empty(sqs, sqs.get_queue_url(QueueName=settings.retrain_queue)["QueueUrl"]),
            "every retrain trigger was consumed",
        )

        if not verbose:
            lines = [
                json.loads(line) for line in log_path.read_text().splitlines() if line.startswith('{"level"')
            ]
            recorded = [line for line in lines if line.get("message") == "upload recorded"]
            if recorded:
                keys = ("level", "message", "handler", "correlation_id", "upload_id", "status", "issue_codes")
                print(
                    f"\n   structured log sample ({log_path.relative_to(PROJECT_DIR)}): {json.dumps({k: recorded[0].get(k) for k in keys})}"
                )
            demo.check(
                bool(recorded) and all(r.get("correlation_id") for r in recorded),
                "functions log JSON with a correlation id",
            )
    return _finish(demo)


def _finish(demo: Demo) -> int:
    print()
    if demo.failures:
        print(f"DEMO FAILED: {len(demo.failures)} check(s) did not hold:")
        for failure in demo.failures:
            print(f"  - {failure}")
        return 1
    print("DEMO OK: every step did what it should.")
    return 0


def _follow_run(
    demo: Demo, runs: Any, match: Callable[[dict[str, Any]], bool], timeout_s: float = 120
) -> dict[str, Any] | None:
    """Wait for the run that matches, printing its status as it changes; None if it never succeeds."""
    deadline = time.monotonic() + timeout_s
    seen = ""
    run: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        run = next((r for r in runs.list_runs(DATASET) if match(r)), None)
        if run and run["status"] != seen:
            seen = run["status"]
            print(f"   run {run['run_id']}: {seen}", flush=True)
        if run and run["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.3)
    ok = bool(run) and run is not None and run["status"] == "succeeded"
    demo.check(
        ok,
        f"run {run['run_id'] if run else '(none started)'} {'succeeded' if ok else 'did not succeed: ' + str(run and run.get('error'))}",
    )
    return run if ok else None


def _print_table(s3: Any, bucket: str, entries: list[Any]) -> None:
    print(f"\n   {'file':<34}{'status':<9}{'rows':>5}  {'drift':<10}top issues")
    for e in sorted(entries, key=lambda e: e.key):
        report = json.loads(s3.get_object(Bucket=bucket, Key=e.report_key)["Body"].read())
        top = ", ".join(f"{i['code']} x{i['count']}" for i in report["issues"][:3]) or "-"
        print(f"   {e.key.rsplit('/', 1)[-1]:<34}{e.status:<9}{e.rows or 0:>5}  {e.drift or '-':<10}{top}")
    print()


def _peek(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Read the queue's messages without consuming them (visibility 0)."""
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(5):
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        ):
            seen[m["MessageId"]] = json.loads(m["Body"])
    return list(seen.values())


def _queue_empty(sqs: Any, url: str) -> bool:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return (
        attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    )


def _notification(bucket: str, key: str, head: dict[str, Any]) -> dict[str, Any]:
    """The S3 ObjectCreated notification for an existing object, as S3 would (re)deliver it."""
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": head["LastModified"].isoformat(),
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": quote_plus(key),
                        "size": head["ContentLength"],
                        "eTag": head["ETag"].strip('"'),
                        "versionId": head.get("VersionId"),
                    },
                },
            }
        ]
    }
