"""Receiving outcomes on in-memory adapters (chalicelib/monitoring/outcomes_service.py): API requests
stored whole or refused whole; uploads under outcomes/ stored row by row, bad rows quarantined with a
report, the upload left as it was, a retried event stored once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.adapters.memory.outcomes import MemoryOutcomeStore
from chalicelib.adapters.memory.registry import MemoryRegistry
from chalicelib.monitoring.outcomes import InvalidOutcomes
from chalicelib.monitoring.outcomes_service import (
    OutcomePorts,
    OutcomeUploadPorts,
    UnknownModel,
    accept,
    ingest_upload,
)
from chalicelib.validation.exceptions import NoContract
from tests.service.world import BUCKET, World
from tests.support import DATASET, contract_for

RID = "ab" * 16
T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)
WIDE = (T0 - timedelta(days=400), T0 + timedelta(days=400))


class Outcomes(World):
    """The world of uploads plus a registry with the model registered and the outcome store."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.registry = MemoryRegistry()
        self.registry.register_version(DATASET, {"run_id": "run-1"})
        self.contracts.put(contract_for())
        self.store = MemoryOutcomeStore(self.objects, BUCKET)
        self.api = OutcomePorts(contracts=self.contracts, outcomes=self.store, registry=self.registry)
        self.uploads = OutcomeUploadPorts(
            contracts=self.contracts, outcomes=self.store, source=self.source, quarantine=self.outputs
        )

    def stored(self, model: str = DATASET) -> list:
        return list(self.store.received(model, *WIDE))


@pytest.fixture
def world() -> Outcomes:
    return Outcomes()


def test_a_good_request_is_stored_as_one_object_tagged_confidential(world):
    items = [
        {"request_id": RID, "label": 1},
        {"request_id": RID, "index": 4, "label": 0},
        {"row_id": "patient-0042", "label": 1},
    ]
    answer = accept(world.api, DATASET, items, source="api:r1", received_at=T0)
    assert answer["accepted"] == 3 and answer["key"].startswith(f"monitoring/{DATASET}/outcomes/2026-12-01/")
    assert [(o.request_id, o.index, o.row_id, o.label) for o in world.stored()] == [
        (RID, 0, None, 1),
        (RID, 4, None, 0),
        (None, 0, "patient-0042", 1),
    ]
    # The target (diagnosis) is confidential: so is the object, for the retention rules.
    assert world.tags(answer["key"])["classification"] == "confidential"


def test_one_bad_item_refuses_the_request_naming_every_bad_item_and_stores_nothing(world):
    items = [
        {"request_id": RID, "label": 1},
        {"request_id": RID, "label": 2},
        {"row_id": "patient-1", "label": 0},
        {"request_id": RID, "label": 0, "note": "x"},
    ]
    with pytest.raises(InvalidOutcomes) as refused:
        accept(world.api, DATASET, items, source="api:r1", received_at=T0)
    problems = refused.value.details()["problems"]
    assert {(p["item"], p["field"]) for p in problems} == {(1, "label"), (2, "row_id"), (3, "note")}
    assert world.stored() == [] and world.keys("monitoring/") == []


def test_outcomes_for_an_unknown_model_or_one_without_a_contract_are_not_found(world):
    with pytest.raises(UnknownModel):
        accept(world.api, "nobody", [{"request_id": RID, "label": 1}], source="api:r1")
    world.registry.register_version("nocontract", {"run_id": "run-9"})
    with pytest.raises(NoContract):
        accept(world.api, "nocontract", [{"request_id": RID, "label": 1}], source="api:r1")


_label = st.one_of(st.sampled_from([0, 1, 2, -1]), st.booleans(), st.text(max_size=2), st.none(), st.floats())
_item = st.one_of(
    st.fixed_dictionaries({"request_id": st.sampled_from([RID, "zz"]), "label": _label}),
    st.fixed_dictionaries({"row_id": st.sampled_from(["patient-0001", "p-1"]), "label": _label}),
    st.dictionaries(st.sampled_from(["request_id", "row_id", "index", "label", "x"]), _label, max_size=3),
    st.integers(),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(_item, min_size=1, max_size=8))
def test_any_request_stores_all_its_outcomes_or_none_and_a_refusal_names_a_field_per_problem(items):
    world = Outcomes()
    try:
        answer = accept(world.api, DATASET, items, source="api:p", received_at=T0)
    except InvalidOutcomes as refused:
        assert world.keys("monitoring/") == []
        for problem in refused.details()["problems"]:
            assert problem["field"] and problem["item"] is not None
        return
    assert answer["accepted"] == len(items) == len(world.stored())


# --- uploads ------------------------------------------------------------------------------------------------


GOOD_AND_BAD = (
    f"request_id,index,row_id,label\n{RID},0,,1\n{RID},1,,7\n,,patient-0007,0\nnot-an-id,,,1\n,,patient-0008,\n"
).encode()


def test_an_upload_stores_its_good_rows_and_quarantines_its_bad_ones_with_a_report(world):
    key = f"outcomes/{DATASET}/2026-12-01.csv"
    notification = world.put(key, GOOD_AND_BAD)
    answer = ingest_upload(notification, world.uploads)
    assert answer["status"] == "partial" and answer["accepted"] == 2 and answer["rejected"] == 3
    stored = world.stored()
    assert [(o.request_id, o.row_id, o.label) for o in stored] == [(RID, None, 1), (None, "patient-0007", 0)]
    assert {o.source for o in stored} == {f"upload:{key}@{notification['version_id']}"}
    report = world.json(answer["report_key"])
    assert answer["report_key"].startswith(f"quarantine/outcomes/{DATASET}/{answer['upload_id']}/")
    assert report["stored_key"] == answer["key"] and report["rejected_rows"] == 3
    assert {(p["row"], p["field"]) for p in report["problems"]} == {
        (2, "label"),
        (4, "request_id"),
        (5, "label"),
    }
    assert all("7" not in p["problem"] for p in report["problems"] if p["field"] == "label")  # confidential
    rows = world.objects.get(BUCKET, report["quarantined_rows_key"]).body.decode().splitlines()
    assert rows == [
        "row,request_id,index,row_id,label",
        f"2,{RID},1,,7",
        "4,not-an-id,,,1",
        "5,,,patient-0008,",
    ]
    assert world.tags(answer["report_key"]) == {
        "dataset": DATASET,
        "classification": "confidential",
        "stage": "quarantine",
    }
    # The upload itself is untouched: one version, the bytes as sent.
    assert world.objects.version_ids(BUCKET, key) == [notification["version_id"]]
    assert world.objects.get(BUCKET, key).body == GOOD_AND_BAD


def test_a_retried_upload_event_stores_its_outcomes_once(world):
    notification = world.put(f"outcomes/{DATASET}/a.csv", GOOD_AND_BAD)
    first = ingest_upload(notification, world.uploads)
    again = ingest_upload(notification, world.uploads)
    assert again["key"] == first["key"] and again["report_key"] == first["report_key"]
    assert len(world.stored()) == 2 and len(world.keys(f"monitoring/{DATASET}/")) == 1
    assert world.objects.version_ids(BUCKET, first["key"]).__len__() == 1


def test_a_new_version_of_the_same_file_is_a_new_source(world):
    key = f"outcomes/{DATASET}/a.csv"
    ingest_upload(world.put(key, GOOD_AND_BAD), world.uploads)
    ingest_upload(world.put(key, GOOD_AND_BAD), world.uploads)
    assert len(world.keys(f"monitoring/{DATASET}/")) == 2  # the join counts the repeats as duplicates


def test_a_clean_upload_writes_no_quarantine(world):
    body = b"row_id,label\npatient-0001,1\npatient-0002,0\n"
    answer = ingest_upload(world.put(f"outcomes/{DATASET}/clean.csv", body), world.uploads)
    assert answer["status"] == "stored" and answer["report_key"] is None
    assert world.keys("quarantine/") == [] and len(world.stored()) == 2


@pytest.mark.parametrize(
    ("key", "body", "words", "folder"),
    [
        (f"outcomes/{DATASET}/a.csv", b"request_id,label,extra\n", "header column 3", DATASET),
        (f"outcomes/{DATASET}/a.csv", b"", "empty", DATASET),
        ("outcomes/nocontract/a.csv", f"request_id,label\n{RID},1\n".encode(), "no contract", "nocontract"),
        ("outcomes/stray.csv", f"request_id,label\n{RID},1\n".encode(), "must look like", "_unroutable"),
        (f"outcomes/{DATASET}/a.json", b"{}", ".csv file", "_unroutable"),
    ],
)
def test_an_upload_that_cannot_be_read_as_outcomes_gets_a_report_and_stores_nothing(
    world, key, body, words, folder
):
    answer = ingest_upload(world.put(key, body), world.uploads)
    assert answer["status"] == "rejected" and answer["key"] is None
    assert answer["report_key"] == f"quarantine/outcomes/{folder}/{answer['upload_id']}/report.json"
    report = world.json(answer["report_key"])
    assert words in report["problems"][0]["problem"] and report["accepted"] == 0
    assert world.keys("monitoring/") == []
    assert world.objects.get(BUCKET, key).body == body


def test_an_upload_gone_before_it_is_read_stores_nothing(world):
    notification = world.put(f"outcomes/{DATASET}/gone.csv", GOOD_AND_BAD)
    world.objects.delete(BUCKET, notification["key"], notification["version_id"])
    assert ingest_upload(notification, world.uploads)["status"] == "missing"
    assert world.keys("monitoring/") == [] and world.keys("quarantine/") == []


def test_the_report_is_plain_json_naming_the_upload(world):
    notification = world.put(f"outcomes/{DATASET}/b.csv", GOOD_AND_BAD)
    answer = ingest_upload(notification, world.uploads)
    report = json.loads(world.objects.get(BUCKET, answer["report_key"]).body)
    assert report["kind"] == "outcomes" and report["upload"]["key"] == notification["key"]
    assert report["upload"]["version_id"] == notification["version_id"]
    assert report["received_at"] == "2026-11-30T12:00:01.000Z"  # the upload's event time


def test_the_ingest_function_routes_the_prefix_outcomes_are_uploaded_under():
    from chalicelib.entrypoints.datasets import OUTCOMES_PREFIX as routed
    from chalicelib.monitoring.outcomes import OUTCOMES_PREFIX

    assert routed == OUTCOMES_PREFIX == "outcomes/"
