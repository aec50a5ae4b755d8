"""The monitor service on in-memory ports: windows reported once, late outcomes re-reported, sustained
breaches recorded once, announced and sent as retrain triggers once per run of breaches.

The champion is a real model (the training job's code on the breast cancer rows, exported to ONNX);
its live records are its own holdout rows scored by onnxruntime, as /predict would capture them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from chalicelib import notify
from chalicelib.adapters.memory.artifacts import MemoryArtifacts
from chalicelib.adapters.memory.monitoring import MemoryMonitoringStore
from chalicelib.adapters.memory.notifier import MemoryNotifier
from chalicelib.adapters.memory.queues import MemoryQueue
from chalicelib.monitoring.outcomes import Outcome
from chalicelib.monitoring.service import MonitorPorts, floor_window, run_monitor
from chalicelib.serving.model import OnnxModel
from chalicelib.validation.contract import Contract
from tests.support import DATASET, built, contract_for

BUCKET = "models"
T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MONITORING = {"min_requests": 50, "performance": {"min_outcomes": 100}}


class Registry:
    def __init__(self, doc: dict[str, Any] | None) -> None:
        self.doc = doc

    def champion(self, model: str) -> int | None:
        return 1 if self.doc and model == DATASET else None

    def challenger(self, model: str) -> int | None:
        return None

    def version(self, model: str, v: int) -> dict[str, Any] | None:
        return self.doc if self.doc and (model, v) == (DATASET, 1) else None

    def versions(self, model: str) -> list[dict[str, Any]]:
        return [self.doc] if self.doc and model == DATASET else []

    def models(self) -> list[str]:
        return [DATASET] if self.doc else []


class Contracts:
    def __init__(self, contract: Contract) -> None:
        self.contract = contract

    def get(self, dataset: str) -> Contract:
        return self.contract


class Capture:
    """What the capture pipeline stored: records, read by time."""

    def __init__(self) -> None:
        self.stored: list[dict[str, Any]] = []

    def records(self, model: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        for record in self.stored:
            if record["model"] == model and start <= datetime.fromisoformat(record["time"]) < end:
                yield record


class Outcomes:
    def __init__(self) -> None:
        self.stored: list[Outcome] = []

    def add(
        self, model: str, outcomes: Sequence[Outcome], source: str, *, classification: str = "confidential"
    ) -> str:
        self.stored.extend(outcomes)
        return f"k{len(self.stored)}"

    def received(self, model: str, start: datetime, end: datetime) -> Iterator[Outcome]:
        for outcome in self.stored:
            if outcome.model == model and start <= _at(outcome.received_at) < end:
                yield outcome

    def arrivals(self, model: str, start: datetime, end: datetime) -> list[datetime]:
        return sorted({_at(o.received_at) for o in self.received(model, start, end)})


def _at(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def champion_doc(artifacts: MemoryArtifacts) -> tuple[dict[str, Any], dict[str, bytes]]:
    files, _ = built("forest")
    located = {}
    for name, data in files.items():
        key = f"models/{DATASET}/candidates/run/{name}"
        located[name] = {
            "key": key,
            "version_id": artifacts.put(BUCKET, key, data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
    metrics = json.loads(files["metrics.json"])
    doc = {
        "model": DATASET,
        "version": 1,
        "status": "champion",
        "bucket": BUCKET,
        "artifacts": located,
        "primary_metric": "accuracy",
        "primary_value": 0.93,
        "training_metrics": metrics,
        "task": "classification",
    }
    return doc, files


def monitored_contract(monitoring: dict[str, Any]) -> Contract:
    """The forest's contract with its measurements internal: the demo's marks them confidential,
    which capture drops (monitoring.confidential "drop"), leaving nothing to compare."""
    doc = contract_for("forest").to_dict()
    doc["columns"] = [{**c, "classification": "internal"} for c in doc["columns"]]
    return Contract.parse({**doc, "monitoring": monitoring})


@pytest.fixture
def world() -> dict[str, Any]:
    artifacts = MemoryArtifacts()
    doc, files = champion_doc(artifacts)
    contract = monitored_contract(MONITORING)
    capture, outcomes, store = Capture(), Outcomes(), MemoryMonitoringStore()
    queue, notifier = MemoryQueue(), MemoryNotifier()
    emitted: list[tuple[str, dict[str, Any]]] = []
    ports = MonitorPorts(
        registry=Registry(doc),
        contracts=Contracts(contract),
        artifacts=artifacts,
        capture=capture,
        outcomes=outcomes,
        store=store,
        retrain=queue,
        notifier=notifier,
        emit=lambda model, report: emitted.append((model, report)),
    )
    schema = json.loads(files["input_schema.json"])
    session = OnnxModel(files["model.onnx"], schema)
    rows = list(csv.DictReader(io.StringIO(files["holdout.csv"].decode())))
    return {
        "ports": ports,
        "capture": capture,
        "outcomes": outcomes,
        "store": store,
        "queue": queue,
        "notifier": notifier,
        "emitted": emitted,
        "session": session,
        "rows": rows,
        "target": schema["target"]["name"]
        if isinstance(schema.get("target"), dict)
        else schema.get("target"),
        "features": [f["name"] for f in schema["features"]],
    }


def stream(
    world: dict[str, Any], start: datetime, n: int, shift: float = 0.0, seed: int = 0
) -> list[dict[str, Any]]:
    """``n`` live records in the hour from ``start``: holdout rows (resampled), the first feature
    shifted by ``shift`` of its standard deviation, scored by the champion as /predict would."""
    rng = np.random.default_rng(seed)
    rows, features = world["rows"], world["features"]
    first = features[0]
    sd = float(np.std([float(r[first]) for r in rows]))
    records = []
    for i in range(n):
        row = rows[int(rng.integers(len(rows)))]
        inputs = {name: float(row[name]) for name in features}
        inputs[first] += shift * sd
        scores = world["session"].run(world["session"].schema.encode_records([inputs]))
        label = scores.labels.tolist()[0]
        probabilities = dict(
            zip([str(c) for c in world["session"].classes], scores.probabilities.tolist()[0], strict=True)
        )
        records.append(
            {
                "request_id": uuid.UUID(int=int(rng.integers(2**63)) + i).hex,
                "index": 0,
                "row_id": None,
                "model": DATASET,
                "version": 1,
                "role": "champion",
                "time": (start + timedelta(seconds=3600 * i / n)).isoformat(),
                "latency_ms": 2.0,
                "status": "ok",
                "problems": [],
                "inputs": inputs,
                "prediction": label,
                "probabilities": probabilities,
                "job_id": None,
                "_truth": row[world["target"]],
            }
        )
    world["capture"].stored.extend(records)
    return records


def label_of(record: dict[str, Any], wrong: bool = False) -> Any:
    truth = record["_truth"]
    return str(1 - int(float(truth))) if wrong else truth


def test_closed_windows_are_reported_once_and_a_rerun_changes_nothing(world: dict[str, Any]) -> None:
    stream(world, T0, 200)
    stream(world, T0 + HOUR, 200, seed=1)
    now = T0 + 2 * HOUR + timedelta(minutes=5)
    first = run_monitor(world["ports"], now)
    # A first run looks a day back: the windows before the traffic are reported too, empty.
    assert first[DATASET]["reported"][-2:] == ["20261201T0000Z", "20261201T0100Z"]
    assert len(first[DATASET]["reported"]) == 24
    earlier = world["store"].windows(DATASET, T0 - 22 * HOUR, T0)
    assert [r["volume"]["records"] for r in earlier] == [0] * 22
    reports = world["store"].windows(DATASET, T0, T0 + 2 * HOUR)
    assert [r["window"] for r in reports] == ["20261201T0000Z", "20261201T0100Z"]
    assert [r["volume"]["records"] for r in reports] == [200, 200]
    assert all(r["verdicts"]["drift"] == "ok" for r in reports), [r["verdicts"] for r in reports]
    assert [model for model, _ in world["emitted"]] == [DATASET] * 24
    second = run_monitor(world["ports"], now + timedelta(minutes=10))
    assert second[DATASET]["reported"] == []
    assert world["notifier"].messages == [] and world["queue"].receive() == []


def test_a_shift_sustained_over_two_windows_is_recorded_announced_and_asks_for_a_retrain_once(
    world: dict[str, Any],
) -> None:
    stream(world, T0, 300)
    for hour in (1, 2, 3):
        stream(world, T0 + hour * HOUR, 300, shift=2.0, seed=hour)
    run_monitor(world["ports"], T0 + 3 * HOUR + timedelta(minutes=1))  # windows 0, 1, 2 closed
    breaches = world["store"].breaches(DATASET, T0, T0 + 4 * HOUR)
    assert [(b["kind"], b["windows"]) for b in breaches if b["kind"] == "drift"] == [
        ("drift", ["20261201T0100Z", "20261201T0200Z"])
    ]
    published = world["notifier"].messages
    assert [t for t, d in published if d["kind"] == "drift"] == [notify.MONITOR_BREACH]
    messages = [m for m in world["queue"].receive() if "drift" in m["kinds"]]
    assert [(m["event"], m["dataset"]) for m in messages] == [("monitor.breach", DATASET)]
    # The shift goes on: the breach of the next window is recorded, but neither announced nor sent again.
    run_monitor(world["ports"], T0 + 4 * HOUR + timedelta(minutes=1))
    drift = [b for b in world["store"].breaches(DATASET, T0, T0 + 5 * HOUR) if b["kind"] == "drift"]
    assert [b["windows"][-1] for b in drift] == ["20261201T0200Z", "20261201T0300Z"]
    assert [d["kind"] for _, d in world["notifier"].messages].count("drift") == 1
    assert not [m for m in world["queue"].receive() if "drift" in m["kinds"]]


def test_outcomes_arriving_later_are_joined_to_the_window_of_their_predictions(world: dict[str, Any]) -> None:
    records = stream(world, T0, 300)
    run_monitor(world["ports"], T0 + HOUR + timedelta(minutes=1))
    (before,) = world["store"].windows(DATASET, T0, T0 + HOUR)
    assert before["performance"]["verdict"] == "insufficient_data"
    received = T0 + 3 * HOUR
    world["outcomes"].stored.extend(
        Outcome(
            model=DATASET,
            label=label_of(r),
            received_at=received,
            source="api:test",
            request_id=r["request_id"],
        )
        for r in records
    )
    result = run_monitor(world["ports"], T0 + 3 * HOUR + timedelta(minutes=30))
    assert "20261201T0000Z" in result[DATASET]["reported"]
    (after,) = world["store"].windows(DATASET, T0, T0 + HOUR)
    performance = after["performance"]
    assert performance["n"] == 300 and performance["verdict"] == "ok", performance
    assert performance["low"] <= performance["value"] <= performance["high"]
    # Nothing new arrived: the next run leaves the window alone.
    assert "20261201T0000Z" not in run_monitor(world["ports"], T0 + 4 * HOUR)[DATASET]["reported"]


def test_outcomes_arriving_days_later_still_reach_their_window_within_the_horizon(
    world: dict[str, Any],
) -> None:
    """A window older than the day a run looks back for new windows is reported again when outcomes
    for it arrive, up to outcome_horizon_hours (168) after it."""
    records = stream(world, T0, 300)
    run_monitor(world["ports"], T0 + HOUR + timedelta(minutes=1))
    later = T0 + 30 * HOUR
    world["outcomes"].stored.extend(
        Outcome(
            model=DATASET, label=label_of(r), received_at=later, source="api:late", request_id=r["request_id"]
        )
        for r in records
    )
    result = run_monitor(world["ports"], later + timedelta(minutes=5))
    assert "20261201T0000Z" in result[DATASET]["reported"]
    (report,) = world["store"].windows(DATASET, T0, T0 + HOUR)
    assert report["performance"]["n"] == 300


def test_wrong_predictions_confirmed_by_outcomes_breach_the_performance_floor(world: dict[str, Any]) -> None:
    records = stream(world, T0, 400)
    world["outcomes"].stored.extend(
        Outcome(
            model=DATASET,
            label=label_of(r, wrong=i % 4 == 0),  # a quarter of the answers were wrong
            received_at=T0 + HOUR,
            source="api:test",
            request_id=r["request_id"],
        )
        for i, r in enumerate(records)
    )
    run_monitor(world["ports"], T0 + HOUR + timedelta(minutes=5))
    (report,) = world["store"].windows(DATASET, T0, T0 + HOUR)
    assert report["performance"]["verdict"] == "breach", report["performance"]
    kinds = [b["kind"] for b in world["store"].breaches(DATASET, T0, T0 + 2 * HOUR)]
    assert kinds == ["performance"]
    assert [m["kinds"] for m in world["queue"].receive()] == [["performance"]]


def test_a_model_without_a_champion_or_with_capture_off_is_skipped(world: dict[str, Any]) -> None:
    stream(world, T0, 100)
    ports = world["ports"]
    ports.registry.doc = None
    assert run_monitor(ports, T0 + 2 * HOUR, models=[DATASET]) == {DATASET: {"skipped": "no champion"}}
    off = monitored_contract({"capture": False})
    ports.registry.doc = champion_doc(ports.artifacts)[0]
    ports.contracts = Contracts(off)
    assert run_monitor(ports, T0 + 2 * HOUR)[DATASET] == {"skipped": "monitoring.capture is off"}
    assert world["store"].writes == []


def test_windows_are_aligned_to_midnight() -> None:
    moment = datetime(2026, 12, 1, 13, 47, 12, tzinfo=UTC)
    assert floor_window(moment, 60) == datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    assert floor_window(moment, 15) == datetime(2026, 12, 1, 13, 45, tzinfo=UTC)
    assert floor_window(moment, 1440) == datetime(2026, 12, 1, tzinfo=UTC)


def test_one_models_failure_does_not_keep_the_others_from_being_monitored(world: dict[str, Any]) -> None:
    from chalicelib.monitoring.service import MonitorFailed

    stream(world, T0, 200)
    broken = Registry(world["ports"].registry.doc)
    broken.models = lambda: ["zzz_broken", DATASET]  # type: ignore[method-assign]
    real_champion = broken.champion

    def champion(model: str) -> int | None:
        if model == "zzz_broken":
            raise RuntimeError("the registry answered 500")
        return real_champion(model)

    broken.champion = champion  # type: ignore[method-assign]
    world["ports"].registry = broken
    with pytest.raises(MonitorFailed) as raised:
        run_monitor(world["ports"], T0 + HOUR + timedelta(minutes=1))
    assert raised.value.failed == {"zzz_broken": "RuntimeError: the registry answered 500"}
    assert "20261201T0000Z" in raised.value.done[DATASET]["reported"]
    assert [w["volume"]["records"] for w in world["store"].windows(DATASET, T0, T0 + HOUR)] == [200]
