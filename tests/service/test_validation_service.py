"""The validation service on in-memory adapters: storing contracts (with the sections later stages
own), validating an upload, and what publishing writes and announces. No AWS, no moto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.validation import Contract, ContractError
from chalicelib.validation.layout import SourceObject
from chalicelib.validation.sections import check_sections, register_section, registered
from chalicelib.validation.service import Published, publish, store_contract, validate_upload
from mlops.datasets import breast_cancer_contract, breast_cancer_rows, drifted, to_csv
from tests.service.world import BUCKET, World

DATASET = "breast_cancer"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def contract_doc() -> dict[str, Any]:
    return breast_cancer_contract()


@pytest.fixture(scope="module")
def days() -> tuple[list[str], list[list[str]]]:
    return breast_cancer_rows()


@pytest.fixture
def world(contract_doc: dict[str, Any]) -> World:
    world = World()
    world.contracts.put(Contract.parse(contract_doc))
    return world


def validate(world: World, key: str, data: bytes, upload_id: str = "u1") -> tuple[Any, Published]:
    """Validate and publish one upload, as ingest does."""
    notification = world.put(key, data)
    opened = world.source.open(BUCKET, key, notification["version_id"], notification["etag"])
    dataset = key.split("/")[1]
    outcome = validate_upload(opened.body, dataset, opened.size, world.validation)
    source = SourceObject(BUCKET, key, opened.version_id)
    return outcome, publish(
        outcome, dataset=dataset, upload_id=upload_id, source=source, sha256="f" * 64, ports=world.validation
    )


def codes(outcome: Any) -> list[str]:
    return sorted({i["code"] for i in outcome.issues})


# --- storing a contract ---------------------------------------------------------------------------


@pytest.fixture
def sections() -> None:
    """The checks training and the registry register when imported (as bootstrap imports them)."""
    from chalicelib import bootstrap

    bootstrap.contract_sections()


def test_a_contract_with_good_sections_is_stored(
    world: World, contract_doc: dict[str, Any], sections: None
) -> None:
    doc = {**contract_doc, "version": 2, "promotion": {"mode": "manual"}}
    assert store_contract(world.contracts, Contract.parse(doc)) == f"contracts/{DATASET}.json"
    assert world.contracts.get(DATASET).version == 2


@pytest.mark.parametrize(
    "section, value, field",
    [
        (
            "training",
            {"model": {"family": "random_forest", "params": {"max_dept": 5}}},
            "training.model.params",
        ),
        ("promotion", {"mode": "sometimes"}, "promotion.mode"),
    ],
)
def test_a_broken_section_of_a_later_stage_is_refused_naming_the_field_and_nothing_is_stored(
    world: World, contract_doc: dict[str, Any], sections: None, section: str, value: Any, field: str
) -> None:
    doc = {**contract_doc, "version": 2, section: value}
    with pytest.raises(ContractError, match=field.replace(".", r"\.")):
        store_contract(world.contracts, Contract.parse(doc))
    assert world.contracts.get(DATASET).version == 1


def test_a_section_check_runs_for_every_contract_stored(
    world: World, contract_doc: dict[str, Any], monkeypatch
) -> None:
    from chalicelib.validation import sections as registry

    monkeypatch.setattr(registry, "_CHECKS", {})
    seen: list[str] = []
    register_section("serving", lambda contract: seen.append(contract.dataset))
    store_contract(world.contracts, Contract.parse(contract_doc))
    check_sections(Contract.parse(contract_doc))
    assert seen == [DATASET, DATASET] and registered() == ["serving"]


def test_only_a_known_section_can_have_a_check() -> None:
    with pytest.raises(ValueError, match="not a contract section"):
        register_section("trainig", lambda contract: None)


def test_the_wiring_registers_the_training_promotion_and_monitoring_checks_in_a_fresh_process() -> None:
    """Validation imports neither stage: the registrations come from bootstrap importing them."""
    code = (
        "import json\n"
        "from chalicelib.validation import sections\n"
        "before = sections.registered()\n"
        "from chalicelib import bootstrap\n"
        "bootstrap.contract_sections()\n"
        "print(json.dumps([before, sections.registered()]))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    before, after = json.loads(run.stdout)
    assert before == [] and sorted(after) == ["monitoring", "promotion", "training"]


@pytest.mark.parametrize(
    "section, value, field",
    [
        (
            "training",
            {"model": {"family": "random_forest", "params": {"max_dept": 5}}},
            "training.model.params",
        ),
        ("promotion", {"mode": "sometimes"}, "promotion.mode"),
    ],
)
def test_the_cli_refuses_a_contract_with_a_broken_section_naming_the_field(
    world: World, contract_doc: dict[str, Any], tmp_path: Path, monkeypatch, capsys, section, value, field
) -> None:
    from chalicelib import bootstrap
    from mlops.cli import main

    monkeypatch.setattr("mlops.localcloud.connect", lambda stage="local": "memory")
    monkeypatch.setattr(bootstrap, "contracts", lambda: world.contracts)
    path = tmp_path / "contract.json"
    path.write_text(json.dumps({**contract_doc, "version": 2, section: value}))
    assert main(["contract", "put", str(path)]) == 2
    assert field in capsys.readouterr().err
    assert world.contracts.get(DATASET).version == 1
    path.write_text(json.dumps({**contract_doc, "version": 2}))
    assert main(["contract", "put", str(path)]) == 0
    assert world.contracts.get(DATASET).version == 2


# --- validating and publishing an upload ------------------------------------------------------------


def test_valid_upload_is_copied_to_validated_with_lineage_tags_and_announced(world: World, days) -> None:
    header, rows = days
    key = f"incoming/{DATASET}/d1.csv"
    outcome, published = validate(world, key, to_csv(header, rows[:100]))
    assert outcome.status == "valid" and outcome.rows == 100
    assert published.output_key == f"validated/{DATASET}/u1.csv"
    copied = world.objects.get(BUCKET, published.output_key)
    assert copied is not None and copied.body == to_csv(header, rows[:100])
    assert copied.metadata["source-key"] == key and copied.metadata["sha256"] == "f" * 64
    assert world.tags(published.output_key) == {
        "dataset": DATASET,
        "classification": "confidential",
        "stage": "validated",
    }
    report = world.json(f"reports/{DATASET}/u1.json")
    assert report["status"] == "valid" and report["source"]["sha256"] == "f" * 64
    assert report["validated_key"] == published.output_key
    assert world.tags(published.report_key)["stage"] == "report"
    (message,) = world.queue.receive()
    assert message["event"] == "data.validated" and message["upload_id"] == "u1" and message["rows"] == 100
    assert published.announced


def test_invalid_upload_is_quarantined_with_the_report_beside_it_and_not_announced(
    world: World, days
) -> None:
    header, rows = days
    bad = [list(r) for r in rows[:60]]
    bad[5][-1] = "7"
    outcome, published = validate(world, f"incoming/{DATASET}/bad.csv", to_csv(header, bad))
    assert outcome.status == "invalid" and codes(outcome) == ["NOT_ALLOWED_VALUE"]
    folder = f"quarantine/{DATASET}/u1"
    assert published.output_key == f"{folder}/bad.csv"
    beside = world.json(f"{folder}/report.json")
    assert beside["issues"][0]["code"] == "NOT_ALLOWED_VALUE" and beside["issues"][0]["row"] == 6
    assert world.tags(published.output_key)["stage"] == "quarantine"
    assert world.json(published.report_key)["quarantine_key"] == published.output_key
    assert world.queue.receive() == [] and not published.announced
    assert world.keys("validated/") == []


def test_original_upload_is_never_modified_or_deleted(world: World, days) -> None:
    header, rows = days
    data = to_csv(header, rows[:3])  # too few rows: quarantined
    key = f"incoming/{DATASET}/small.csv"
    outcome, _ = validate(world, key, data)
    assert outcome.status == "invalid" and "TOO_FEW_ROWS" in codes(outcome)
    assert len(world.objects.version_ids(BUCKET, key)) == 1
    original = world.objects.get(BUCKET, key)
    assert original is not None and original.body == data and original.metadata == {} and original.tags == {}


def test_upload_without_a_contract_is_quarantined_with_no_contract(world: World) -> None:
    outcome, published = validate(world, "incoming/unknown_set/x.csv", b"a,b\n1,2\n")
    assert outcome.status == "invalid" and codes(outcome) == ["NO_CONTRACT"]
    fix = world.json(published.report_key)["issues"][0]["fix"]
    assert "mlops contract put contract.json" in fix and "PUT /datasets/unknown_set/contract" in fix
    # Without a contract nothing says how sensitive the data is: assume confidential.
    assert world.tags(published.output_key)["classification"] == "confidential"


def test_first_valid_upload_becomes_the_reference_and_later_ones_are_compared(world: World, days) -> None:
    header, rows = days
    first, published = validate(world, f"incoming/{DATASET}/d1.csv", to_csv(header, rows[:150]), "u1")
    assert first.drift == "reference" and published.became_reference
    reference = world.outputs.reference(DATASET)
    assert reference is not None and reference["rows"] == 150 and "mean_radius" in reference["columns"]
    stable, published = validate(world, f"incoming/{DATASET}/d2.csv", to_csv(header, rows[150:300]), "u2")
    assert stable.drift == "stable" and not published.became_reference
    moved, _ = validate(
        world, f"incoming/{DATASET}/d3.csv", to_csv(header, drifted(header, rows[300:450])), "u3"
    )
    assert moved.status == "valid" and moved.drift == "drifted"
    assert world.outputs.reference(DATASET)["rows"] == 150  # the reference did not move
    messages = {m["upload_id"]: m for m in world.queue.receive()}
    assert messages["u3"]["drift"] == "drifted" and messages["u3"]["drifted_features"]


def test_uploads_validated_at_once_before_any_reference_compare_with_the_one_that_became_it(
    world: World, days
) -> None:
    """Lambda runs a dataset's first uploads at once: each finds no reference while it validates, and
    only one can make it (create-only). The others are compared with that one, not called
    "reference" themselves (the local cloud's concurrent runtime showed every good upload so)."""
    header, rows = days
    opened = []
    for name, part in (("d1", rows[:150]), ("d2", rows[150:300]), ("d3", drifted(header, rows[300:450]))):
        key = f"incoming/{DATASET}/{name}.csv"
        notification = world.put(key, to_csv(header, part))
        body = world.source.open(BUCKET, key, notification["version_id"], notification["etag"])
        outcome = validate_upload(body.body, DATASET, body.size, world.validation)  # none published yet
        opened.append((name, key, body.version_id, outcome))
    assert [o.drift for *_, o in opened] == ["reference"] * 3
    published = {
        name: publish(
            outcome,
            dataset=DATASET,
            upload_id=name,
            source=SourceObject(BUCKET, key, version),
            sha256="f" * 64,
            ports=world.validation,
        )
        for name, key, version, outcome in opened
    }
    drift = {name: outcome.drift for name, *_, outcome in opened}
    assert published["d1"].became_reference and drift["d1"] == "reference"
    assert not published["d2"].became_reference and drift["d2"] == "stable"
    assert not published["d3"].became_reference and drift["d3"] == "drifted"
    report = world.outputs.get_json(published["d3"].report_key)
    assert report["drift"]["verdict"] == "drifted" and report["drift"]["drifted_features"]
    messages = {m["upload_id"]: m for m in world.queue.receive()}
    assert messages["d2"]["drift"] == "stable" and messages["d3"]["drift"] == "drifted"


def test_an_upload_too_small_to_judge_drift_is_valid_and_announced_as_insufficient_data(
    world: World, days
) -> None:
    header, rows = days
    validate(world, f"incoming/{DATASET}/d1.csv", to_csv(header, rows[:150]), "u1")
    small, published = validate(world, f"incoming/{DATASET}/d2.csv", to_csv(header, rows[150:210]), "u2")
    assert small.status == "valid" and small.drift == "insufficient_data"
    report = world.json(published.report_key)["drift"]
    assert report["verdict"] == "insufficient_data" and report["drifted_features"] == []
    messages = {m["upload_id"]: m for m in world.queue.receive()}
    assert messages["u2"]["drift"] == "insufficient_data" and messages["u2"]["rows"] == 60


def test_publishing_the_same_upload_again_rewrites_the_same_objects(world: World, days) -> None:
    """A retried invocation adds nothing: every key derives from the upload id."""
    header, rows = days
    validate(world, f"incoming/{DATASET}/d1.csv", to_csv(header, rows[:100]))
    before = world.keys("")
    validate(world, f"incoming/{DATASET}/d1.csv", to_csv(header, rows[:100]))
    assert world.keys("") == before


def test_reports_hold_no_value_of_a_confidential_column(world: World, days) -> None:
    header, rows = days
    bad = [list(r) for r in rows[:60]]
    bad[2][3] = "123456.789"  # a confidential measurement out of range
    outcome, published = validate(world, f"incoming/{DATASET}/leak.csv", to_csv(header, bad))
    assert "OUT_OF_RANGE" in codes(outcome)
    assert "123456.789" not in json.dumps(world.json(published.report_key))
    assert world.tags(published.report_key)["classification"] == "confidential"


# --- pii and confidential values ------------------------------------------------------------------


def _accounts_contract() -> Contract:
    return Contract.parse(
        {
            "dataset": "accounts",
            "columns": [
                {"name": "id", "type": "string", "classification": "internal"},
                {"name": "account", "type": "string", "classification": "confidential"},
                {"name": "owner", "type": "string", "classification": "pii"},
                {"name": "y", "type": "integer", "classification": "public", "allowed": [0, 1]},
            ],
            "target": "y",
            "task": "classification",
            "row_id": "id",
        }
    )


def _accounts(start: int, n: int) -> bytes:
    rows = [f"r{i},ACCT-{i:06d},owner-{i}@example.com,{i % 2}" for i in range(start, start + n)]
    return ("id,account,owner,y\n" + "\n".join(rows) + "\n").encode()


def test_a_reference_stored_with_raw_values_is_masked_before_drift_and_the_report_shows_none():
    """A reference profile written before profiles were masked holds account numbers as category
    counts: the service masks it as it reads it, so the drift section compares hash buckets with hash
    buckets and names no account, and the new reference a valid upload would make holds none."""
    world = World()
    world.contracts.put(_accounts_contract())
    legacy = {
        "rows": 50,
        "columns": {
            "account": {
                "kind": "categorical",
                "count": 50,
                "nulls": 0,
                "counts": {f"ACCT-{i:06d}": 1 for i in range(50)},
            },
            "owner": {"kind": "categorical", "count": 50, "nulls": 0, "counts": {"owner-1@example.com": 50}},
        },
    }
    world.validation.outputs.create_reference("accounts", legacy, "pii")
    outcome, published = validate(world, "incoming/accounts/day2.csv", _accounts(1000, 60))
    assert outcome.status == "valid"
    report = world.json(published.report_key)
    feature = report["drift"]["features"]["account"]
    assert all(c.startswith("bucket-") for c in feature["new_categories"] + feature["missing_categories"])
    assert "ACCT-" not in json.dumps(report) and "@example.com" not in json.dumps(report)


def test_an_upload_with_spaces_around_header_names_is_validated_not_crashed(world: World, days) -> None:
    """Issue 13: `site ,` in a header was a KeyError in the pipeline, retried for hours, no report."""
    header, rows = days
    spaced = [f"{name} " if i % 2 else f" {name}" for i, name in enumerate(header)]
    entry = world.upload(f"incoming/{DATASET}/spaced.csv", to_csv(spaced, rows[:100]))
    assert entry is not None and entry.status == "valid" and entry.rows == 100
    assert world.json(entry.report_key)["issues"] == []
