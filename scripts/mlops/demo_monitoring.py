"""The monitoring part of the demo: live traffic captured, drift and accuracy per window, a retrain.

Called from ``mlops demo`` once ``breast_cancer`` has a champion. Windows are an hour long, so the
demo moves the local cloud's clock (``MLOPS_LOCAL_CLOCK_OFFSET_S``, which deployed functions never
have) an hour forward between phases instead of waiting:

1. an hour of clean traffic: patients as the champion was trained on, through ``POST /predict``;
2. two hours of shifted traffic: the most important feature moved by a known amount;
3. the true diagnoses arrive later (``POST /models/{name}/outcomes`` by request id);
4. the hourly monitor (``monitor_models``) fires: three windows reported, the shift and the accuracy
   drop flagged, each a sustained breach that is recorded, announced and sent as a retrain trigger;
5. ``mlops monitor breast_cancer`` shows it, and the retrain trigger is decided by the retrain policy.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from chalicelib.timeutil import CLOCK_OFFSET_ENV

DATASET = "breast_cancer"
PER_WINDOW = 600  # records per window: 60 requests of 10 (the default policy judges from 100 records)
PER_REQUEST = 10
SHIFT_FEATURE = "worst_radius"
SHIFT_SD = 1.0  # the shift, in standard deviations of the feature


def _advance(hours: float) -> None:
    offset = float(os.environ.get(CLOCK_OFFSET_ENV) or 0)
    os.environ[CLOCK_OFFSET_ENV] = str(offset + hours * 3600)


def _traffic(
    api: str, token: str, rows: list[dict[str, Any]], truth: list[Any], shift: float, seed: int
) -> list[tuple[str, int, Any]]:
    """PER_WINDOW records through /predict; (request id, index, true label) of each."""
    import numpy as np

    from mlops.models import call

    rng = np.random.default_rng(seed)
    sd = float(np.std([row[SHIFT_FEATURE] for row in rows]))
    sent = []
    for _ in range(PER_WINDOW // PER_REQUEST):
        picks = rng.integers(len(rows), size=PER_REQUEST)
        records = [{**rows[i], SHIFT_FEATURE: rows[i][SHIFT_FEATURE] + shift * sd} for i in picks]
        answer = call("POST", f"/models/{DATASET}/predict", {"records": records}, token=token, base=api)
        sent += [(answer["request_id"], n, truth[i]) for n, i in enumerate(picks)]
    return sent


def run_monitoring_demo(
    demo: Any,
    api: str,
    settings: Any,
    token: dict[str, str],
    cloud: Any,
    inbox: Callable[[], list[dict[str, Any]]],
) -> None:
    from chalicelib.adapters.aws.capture import S3CaptureSource
    from chalicelib.monitoring.service import floor_window
    from chalicelib.timeutil import utc_now
    from mlops.datasets import breast_cancer_rows
    from mlops.demo import wait_for
    from mlops.models import call
    from mlops.monitor import print_monitoring

    demo.step("Monitoring in production: every answer captured (masked), drift on live traffic, outcomes")
    header, raw = breast_cancer_rows()
    features = [h for h in header if h not in ("diagnosis", "patient_email", "patient_id", "upload")]
    target = "diagnosis"
    rows = [{f: float(r[header.index(f)]) for f in features if r[header.index(f)] != ""} for r in raw]
    truth = [int(float(r[header.index(target)])) for r in raw]
    # The windows start on an hour: the clean hour is the one after this, so nothing served before the
    # demo's traffic (the batch job's rows) shares its window.
    _advance((floor_window(utc_now(), 60).timestamp() + 3600 - utc_now().timestamp()) / 3600 + 1 / 60)
    started = utc_now()
    sent = _traffic(api, token["viewer"], rows, truth, 0.0, seed=1)
    print(f"   hour 1: {len(sent)} records of clean traffic in {len(sent) // PER_REQUEST} requests")
    for hour in (2, 3):
        _advance(1)
        sent += _traffic(api, token["viewer"], rows, truth, SHIFT_SD, seed=hour)
        print(f"   hour {hour}: {PER_WINDOW} records with {SHIFT_FEATURE} shifted by +{SHIFT_SD:g} SD")
    source = S3CaptureSource(settings.data_bucket)
    landed = wait_for(
        lambda: sum(1 for _ in source.records(DATASET, started, utc_now())) >= len(sent) or None,
        timeout_s=180,
    )
    demo.check(
        bool(landed),
        f"all {len(sent)} answers captured: the API printed them, its log group's subscription sent them "
        "through Firehose to s3://.../capture/live/",
    )
    sample = next(iter(source.records(DATASET, started, utc_now())), {})
    print(
        f"   one record: {json.dumps({k: sample.get(k) for k in ('request_id', 'version', 'role', 'prediction', 'latency_ms')})}"
    )

    demo.step("The true diagnoses arrive later (POST /models/breast_cancer/outcomes, by request id)")
    _advance(1)
    for i in range(0, len(sent), 500):
        batch = [{"request_id": rid, "index": n, "label": label} for rid, n, label in sent[i : i + 500]]
        answer = call(
            "POST", f"/models/{DATASET}/outcomes", {"outcomes": batch}, token=token["approver"], base=api
        )
        print(f"   {answer.get('accepted')} outcome(s) accepted")

    demo.step("The hourly monitor fires (monitor_models): a report per window, breaches, alarms, a retrain")
    started_runs = time.monotonic()
    outcome = cloud.runtime.fire("monitor_models") or {}
    print(f"   {json.dumps(outcome.get(DATASET))} ({time.monotonic() - started_runs:.1f} s)")
    doc = call(
        "GET", f"/models/{DATASET}/monitoring?from={started.isoformat()}", token=token["viewer"], base=api
    )
    print_monitoring(doc, out=_Indented())
    kinds = {b["kind"] for b in doc.get("breaches", [])}
    windows = doc.get("windows", [])
    demo.check(
        len(windows) >= 3 and (windows[0].get("verdicts") or {}).get("drift") == "ok",
        "the clean hour is stable",
    )
    demo.check(
        "drift" in kinds, f"the shift of {SHIFT_FEATURE} was flagged within two windows (drift breach)"
    )
    demo.check("performance" in kinds, "the accuracy drop was flagged once outcomes covered the windows")
    notes = wait_for(lambda: [n for n in inbox() if n.get("type") == "Model monitoring breach"], timeout_s=60)
    demo.check(bool(notes), f"{len(notes or [])} notification(s) 'Model monitoring breach' on the topic")


class _Indented:
    def write(self, text: str) -> int:
        import sys

        return sys.stdout.write(text.replace("\n", "\n   ") if text != "\n" else text)

    def flush(self) -> None:
        pass
