"""The monitoring part of the demo: live traffic captured, drift and accuracy per window, a retrain.

Called from ``mlops demo`` after the breast cancer stories. A second model, store sales (generated:
units from price, ads, footfall and region; public and internal columns, so capture keeps them as
sent, where the breast cancer contract's confidential measurements are dropped), becomes champion,
then serves. Windows are an hour long: the demo moves the local cloud's clock
(``MLOPS_LOCAL_CLOCK_OFFSET_S``, which deployed functions never have) an hour forward between phases
instead of waiting.

1. an hour of clean traffic through ``POST /models/store_sales/predict``;
2. two hours in which ``ads`` arrives three times too large (a unit mix-up the contract cannot catch:
   still within its range), so the model's forecasts go wrong;
3. the true sales arrive later (``POST /models/store_sales/outcomes``, by request id), and a few
   corrected rows are uploaded as new training data;
4. the hourly monitor (``monitor_models``) fires: three windows reported, the shift and the error
   flagged as sustained breaches, recorded, announced and sent as retrain triggers; the retrain
   policy launches a run;
5. ``mlops monitor store_sales`` shows it.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from datetime import timedelta
from typing import Any

from chalicelib.timeutil import CLOCK_OFFSET_ENV

MODEL = "store_sales"
PER_WINDOW = 600  # records per window: 60 requests of 10 (the default policy judges from 500 outcomes)
PER_REQUEST = 10
FEATURES = ("price", "ads", "footfall", "region")


def _set_clock(seconds: float) -> None:
    os.environ[CLOCK_OFFSET_ENV] = str(seconds)


def _traffic(api: str, token: str, seed: int, ads_factor: float) -> list[tuple[str, int, float]]:
    """PER_WINDOW records through /predict; (request id, index, true units) of each."""
    from mlops.datasets import sales_rows
    from mlops.models import call

    header, rows = sales_rows(PER_WINDOW, start=100_000 * seed, seed=seed, ads_factor=ads_factor)
    sent = []
    for i in range(0, PER_WINDOW, PER_REQUEST):
        chunk = rows[i : i + PER_REQUEST]
        records = [
            {
                n: (cell if n == "region" else float(cell))
                for n, cell in zip(header, row, strict=True)
                if n in FEATURES
            }
            for row in chunk
        ]
        answer = call("POST", f"/models/{MODEL}/predict", {"records": records}, token=token, base=api)
        sent += [(answer["request_id"], n, float(row[header.index("units")])) for n, row in enumerate(chunk)]
    return sent


def _champion(registry: Any) -> int | None:
    return registry.champion(MODEL)


def run_monitoring_demo(
    demo: Any, api: str, settings: Any, token: dict[str, str], cloud: Any, inbox: Any
) -> None:
    import boto3

    from chalicelib.adapters.aws.capture import S3CaptureSource
    from chalicelib.adapters.aws.registry import DynamoRegistry
    from chalicelib.adapters.aws.runs import DynamoRunsStore
    from chalicelib.monitoring.service import floor_window
    from chalicelib.timeutil import utc_now
    from mlops.datasets import sales_contract, sales_rows, to_csv
    from mlops.demo import wait_for
    from mlops.models import call
    from mlops.monitor import print_monitoring

    demo.step(f"Monitoring in production: a second model, {MODEL}, trained and promoted to serve")
    s3 = boto3.client("s3")
    contract = sales_contract({"family": "linear_regression"})
    call("PUT", f"/datasets/{MODEL}/contract", contract, token=token["admin"], base=api)
    data = to_csv(*sales_rows(480, start=0, seed=1))
    s3.put_object(Bucket=settings.data_bucket, Key=f"incoming/{MODEL}/week-1.csv", Body=data)
    registry = DynamoRegistry(settings.registry_table, settings.audit_table)
    champion = wait_for(lambda: _champion(registry))
    demo.check(bool(champion), f"{MODEL} v{champion} is champion (an upload of 480 rows, a run, the gates)")
    if not champion:
        return

    demo.step("Live traffic: an hour clean, then two hours with ads written three times too large")
    # The clock moves to a minute into the next hour: each phase below is one window of its own.
    now = utc_now()
    base = (floor_window(now, 60) + timedelta(hours=1, minutes=1) - now).total_seconds()
    _set_clock(base)
    started = floor_window(utc_now(), 60)
    sent = _traffic(api, token["viewer"], seed=21, ads_factor=1.0)
    print(f"   {started:%H:%M}: {len(sent)} records, clean, in {len(sent) // PER_REQUEST} requests")
    for hour in (1, 2):
        _set_clock(base + 3600 * hour)
        sent += _traffic(api, token["viewer"], seed=21 + hour, ads_factor=3.0)
        print(
            f"   {started + timedelta(hours=hour):%H:%M}: {PER_WINDOW} records, ads x3 (still within the contract)"
        )
    cloud.flush_logs()
    source = S3CaptureSource(settings.data_bucket)
    end = started + timedelta(hours=3)
    landed = wait_for(
        lambda: sum(1 for _ in source.records(MODEL, started, end)) >= len(sent) or None, timeout_s=120
    )
    demo.check(
        bool(landed),
        f"every answer captured: {len(sent)} records printed by the API, delivered by its log group's "
        "subscription through Firehose to capture/live/",
    )
    sample = next(iter(source.records(MODEL, started, end)), {})
    keys = ("request_id", "version", "role", "inputs", "prediction", "latency_ms")
    print(f"   a record: {json.dumps({k: sample.get(k) for k in keys})}")
    cancer = next(iter(source.records("breast_cancer", started - timedelta(days=1), end)), None)
    if cancer is not None:
        print(
            f"   a breast_cancer record's inputs: {json.dumps(cancer.get('inputs'))} "
            "(its measurements are confidential: monitoring.confidential drop)"
        )

    demo.step(f"The true sales arrive later (POST /models/{MODEL}/outcomes, role reporter), and new rows")
    _set_clock(base + 3 * 3600)
    for i in range(0, len(sent), 1000):
        batch = [{"request_id": rid, "index": n, "label": units} for rid, n, units in sent[i : i + 1000]]
        answer = call(
            "POST", f"/models/{MODEL}/outcomes", {"outcomes": batch}, token=token["reporter"], base=api
        )
        print(
            f"   {answer.get('accepted')} outcomes accepted -> s3://{settings.data_bucket}/{answer.get('key')}"
        )
    fixed = to_csv(*sales_rows(60, start=900_000, seed=99))
    s3.put_object(Bucket=settings.data_bucket, Key=f"incoming/{MODEL}/corrected.csv", Body=fixed)
    runs = DynamoRunsStore(settings.runs_table)
    counted = wait_for(lambda: runs.state(MODEL).rows_since_training >= 60 or None, timeout_s=120)
    demo.check(
        bool(counted), "60 corrected rows validated: too few to retrain on their own (min_new_rows 100)"
    )

    demo.step("The hourly monitor fires (monitor_models): a report per window, sustained breaches, a retrain")
    fired = time.monotonic()
    assert cloud.runtime is not None
    fired_result: dict[str, Any] = {}
    # On a thread of its own, as the event runtime runs functions: what it prints (its EMF metrics)
    # goes to the functions' log, not the terminal.
    worker = threading.Thread(target=lambda: fired_result.update(cloud.runtime.fire("monitor_models") or {}))
    worker.start()
    worker.join()
    outcome = fired_result.get(MODEL) or {}
    print(f"   {len(outcome.get('reported', []))} window(s) reported in {time.monotonic() - fired:.1f} s")
    doc = call(
        "GET",
        f"/models/{MODEL}/monitoring?from={started:%Y-%m-%dT%H:%M:%SZ}",
        token=token["viewer"],
        base=api,
    )
    table = io.StringIO()
    print_monitoring(doc, out=table)
    print("   " + table.getvalue().rstrip().replace("\n", "\n   "))
    windows = doc.get("windows", [])
    verdicts = [w.get("verdicts", {}).get("drift") for w in windows]
    demo.check(verdicts[:1] == ["ok"], "the clean hour: no drift")
    kinds = {b["kind"] for b in doc.get("breaches", [])}
    demo.check(
        verdicts[1:3] == ["breach", "breach"] and "drift" in kinds,
        "the shift flagged in both shifted hours: a sustained drift breach (2 windows in a row)",
    )
    demo.check(
        "performance" in kinds,
        "the error flagged once outcomes covered the windows: rmse's interval above its ceiling",
    )
    notes = wait_for(lambda: [n for n in inbox() if n.get("type") == "Model monitoring breach"], timeout_s=60)
    demo.check(bool(notes), f"'Model monitoring breach' announced on the topic ({len(notes or [])})")
    run = wait_for(
        lambda: next(
            (r for r in runs.list_runs(MODEL) if any("monitoring:" in x for x in r.get("reasons", []))), None
        )
    )
    demo.check(
        bool(run),
        f"a retrain of kind monitor started: run {run and run['run_id']} ({run and '; '.join(run['reasons'])})",
    )
    print(f"   (mlops monitor {MODEL}; GET /models/{MODEL}/monitoring?from=&to=)")
    os.environ.pop(CLOCK_OFFSET_ENV, None)
