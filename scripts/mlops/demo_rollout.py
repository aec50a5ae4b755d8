"""The rollout part of the demo: a canary of a bad release rolled back by its guards, a good one completing.

Called from ``mlops demo`` after the other stories, on the breast cancer model. Two releases are built
by the training job's own code (``mlops.releases``) and registered as versions waiting for approval,
as a training run's candidate would be after its gates; they are registered directly because the bad
one is bad in a way the gates would catch on the holdout too (it predicts one class for everyone):
the point here is the net behind the gates, for what a holdout does not show.

1. ``POST /models/breast_cancer/rollout`` (approver): a canary of the bad release, 10% then 100%,
   each step baked 10 minutes; traffic with a routing key per patient; the captured answers reach
   S3; the evaluator (``advance_rollouts``, every 5 minutes) runs once: the guards compare the
   candidate's answers with the champion's on the same requests and abort; all traffic is back on
   the champion; ``Model rollout aborted`` is announced; the version waits for a person again.
2. A good release (a retrained logistic regression): the same canary steps to 100% after its bake,
   then completes: the champion ledger's ``promote`` entry names the rollout.

The local cloud's clock (``MLOPS_LOCAL_CLOCK_OFFSET_S``) moves the bake times forward instead of waiting.
"""

from __future__ import annotations

import io
import os
import threading
from collections import Counter
from typing import Any

from chalicelib.timeutil import CLOCK_OFFSET_ENV

MODEL = "breast_cancer"
REQUESTS = 1000  # a 10% canary answers ~100 of them: the guards' default min_requests
SCHEDULE = {"canary": 10, "bake": "10m"}


def _clock(seconds: float) -> None:
    os.environ[CLOCK_OFFSET_ENV] = str(seconds)


def _register(settings: Any, registry: Any, kind: str, champion: int) -> int:
    """Build the release, store its model and schema in the models bucket, register it and send it
    to wait for approval against the champion (as the gates would)."""
    import boto3

    from mlops.releases import release, stored

    artifacts, fields = release(kind, seed=0)
    s3 = boto3.client("s3")

    def put(bucket: str, key: str, data: bytes) -> str:
        return str(s3.put_object(Bucket=bucket, Key=key, Body=data)["VersionId"])

    run_id = f"demo-rollout-{kind}"
    where = stored(artifacts, put, settings.models_bucket, run_id)
    version, _ = registry.register_version(MODEL, {**fields, "run_id": run_id, **where})
    gates = {
        "decision": "approval",
        "reason": f"a {kind} release for the rollout demo, registered by hand",
        "evaluated_against": champion,
    }
    registry.await_approval(MODEL, version, "demo", gates["reason"], gates, "candidate", champion)
    return int(version)


def _traffic(api: str, token: str, requests: int, seed: int) -> Counter[str]:
    """``requests`` one-patient requests, routed by patient id; which arm answered each."""
    from mlops.models import call
    from mlops.releases import table

    header, rows = table()
    features = header[1:-1]
    arms: Counter[str] = Counter()
    for i in range(requests):
        row = rows[(i * 7 + seed) % len(rows)]
        record = {name: float(value) for name, value in zip(features, row[1:-1], strict=True)}
        answer = call(
            "POST",
            f"/models/{MODEL}/predict",
            {"records": [record], "routing_key": row[0]},
            token=token,
            base=api,
        )
        arms[(answer.get("rollout") or {}).get("arm", "no rollout")] += 1
    return arms


def _routed(api: str, token: str, want: bool) -> bool:
    """Wait until /predict sees the rollout (``want``) or no longer does: warm containers read the
    rollout pointer within the champion TTL."""
    from mlops.demo import wait_for
    from mlops.models import call
    from mlops.releases import table

    header, rows = table()
    record = {name: float(v) for name, v in zip(header[1:-1], rows[0][1:-1], strict=True)}

    def sees() -> bool | None:
        answer = call("POST", f"/models/{MODEL}/predict", {"records": [record]}, token=token, base=api)
        return True if bool(answer.get("rollout")) == want else None

    return bool(wait_for(sees, timeout_s=60))


def _evaluate(cloud: Any, seconds: float) -> dict[str, Any]:
    """Move the clock, deliver what the API printed, and run the evaluator once (on a thread of its
    own, as the event runtime runs functions: its output goes to the functions' log)."""
    _clock(seconds)
    cloud.flush_logs()
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(cloud.runtime.fire("advance_rollouts") or {}))
    worker.start()
    worker.join()
    return result


def _show(api: str, token: str) -> dict[str, Any]:
    from mlops.models import call, print_rollout

    doc = call("GET", f"/models/{MODEL}/rollout", token=token, base=api)
    out = io.StringIO()
    if doc.get("rollout"):
        print_rollout(doc["rollout"], out=out)
    print("   " + out.getvalue().rstrip().replace("\n", "\n   "))
    return dict(doc.get("rollout") or {})


def run_rollout_demo(
    demo: Any, api: str, settings: Any, token: dict[str, str], cloud: Any, inbox: Any
) -> None:
    from chalicelib.adapters.aws.registry import DynamoRegistry
    from mlops.demo import wait_for
    from mlops.models import call

    registry = DynamoRegistry(settings.registry_table, settings.audit_table)
    found = registry.champion(MODEL)
    if found is None:
        demo.check(False, f"{MODEL} has a champion to roll out against")
        return
    champion = int(found)
    offset = float(os.environ.get(CLOCK_OFFSET_ENV) or 0.0)

    demo.step("Progressive delivery: a canary of a bad release (it predicts one class for everyone)")
    bad = _register(settings, registry, "collapse", champion)
    print(f"   v{bad}: trained where 98% of the labels were set to one class; waiting for approval")
    started = call(
        "POST",
        f"/models/{MODEL}/rollout",
        {"version": bad, "reason": "demo: canary of a release that collapsed", **SCHEDULE},
        token=token["approver"],
        base=api,
    )
    rollout = started.get("rollout") or started
    demo.check(
        rollout.get("status") == "active" and rollout.get("share") == 10,
        f"POST /models/{MODEL}/rollout (approver) -> rollout {rollout.get('id')}: v{bad} answers "
        f"{rollout.get('share')}% of requests, 10% then 100%, each step held 10 minutes",
    )
    _routed(api, token["viewer"], want=True)
    arms = _traffic(api, token["viewer"], REQUESTS, seed=0)
    demo.check(
        0 < arms["candidate"] < arms["champion"],
        f"{REQUESTS} requests, routed by patient id: {arms['candidate']} answered by v{bad}, "
        f"{arms['champion']} by the champion v{champion} (which also scored the candidate's, unseen)",
    )
    result = _evaluate(cloud, offset + 5 * 60)
    pointer = _show(api, token["viewer"])
    demo.check(
        pointer.get("status") == "aborted",
        f"five minutes later the evaluator (advance_rollouts) aborts it: {pointer.get('end_reason')}",
    )
    demo.check(registry.champion(MODEL) == champion, f"the champion is still v{champion}")
    _routed(api, token["viewer"], want=False)
    arms = _traffic(api, token["viewer"], 50, seed=1)
    demo.check(
        arms == Counter({"no rollout": 50}),
        "all traffic back on the champion: 50 requests, none to the candidate",
    )
    doc = registry.version(MODEL, bad) or {}
    demo.check(
        doc.get("status") == "pending_approval",
        f"v{bad} waits for a person again ({doc.get('status')}): approve it anew, or reject it",
    )
    notes = wait_for(lambda: [n for n in inbox() if n.get("type") == "Model rollout aborted"], timeout_s=60)
    demo.check(bool(notes), f"'Model rollout aborted' announced on the topic ({len(notes or [])})")
    del result

    demo.step("A good release (a retrained logistic regression): canary 10%, then 100%, then champion")
    good = _register(settings, registry, "retrained", champion)
    call(
        "POST",
        f"/models/{MODEL}/rollout",
        {"version": good, "reason": "demo: canary of a retrained model", **SCHEDULE},
        token=token["approver"],
        base=api,
    )
    _routed(api, token["viewer"], want=True)
    arms = _traffic(api, token["viewer"], REQUESTS, seed=2)
    print(
        f"   {REQUESTS} requests: {arms['candidate']} answered by v{good}, {arms['champion']} by v{champion}"
    )
    _evaluate(cloud, offset + 20 * 60)
    pointer = _show(api, token["viewer"])
    demo.check(
        pointer.get("status") == "active" and pointer.get("share") == 100,
        f"after its 10-minute bake the guards pass: v{good} steps to {pointer.get('share')}%",
    )
    arms = _traffic(api, token["viewer"], 300, seed=3)
    _evaluate(cloud, offset + 35 * 60)
    pointer = _show(api, token["viewer"])
    entry = (registry.audit(MODEL) or [{}])[-1]
    demo.check(
        pointer.get("status") == "completed" and registry.champion(MODEL) == good,
        f"after the 100% step's bake it completes: v{good} is the champion (ledger entry {entry.get('seq')}: "
        f"{entry.get('action')} by {entry.get('who')}: {entry.get('reason')})",
    )
    print(f"   (mlops models show {MODEL}; GET /models/{MODEL}/rollout; docs/rollouts.md)")
    if offset:
        _clock(offset)
    else:
        os.environ.pop(CLOCK_OFFSET_ENV, None)
