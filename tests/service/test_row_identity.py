"""Row identity across uploads, on in-memory adapters: the ingest stage validates and announces each
upload, the kickoff judges the announcements. A re-export of rows already uploaded (another name,
gzip, another row order) is not new data; the report and the ledger say how many rows repeat."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.memory.runs import MemoryRunsStore
from chalicelib.adapters.memory.snapshots import MemorySnapshotStore
from chalicelib.adapters.memory.training_launcher import RecordingLauncher
from chalicelib.ingest.uploads import Upload
from chalicelib.training.messages import trigger_from_message
from chalicelib.training.service import TrainingPorts, handle_trigger
from chalicelib.validation import Contract
from mlops.datasets import breast_cancer_contract, breast_cancer_rows, to_csv
from tests.service.world import BUCKET, World
from tests.support import IRIS

DATASET = "breast_cancer"  # row id "row_id"; a run needs 300 new rows (min_new_rows), no cooldown
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Pipeline(World):
    """The ingest world, and the kickoff fed from its retrain queue over the same bucket."""

    def __init__(self) -> None:
        super().__init__()
        self.contracts.put(Contract.parse(breast_cancer_contract()))
        self.contracts.put(Contract.parse(IRIS))
        self.runs = MemoryRunsStore()
        self.launcher = RecordingLauncher()
        self.snapshots = MemorySnapshotStore()
        self.training = TrainingPorts(self.runs, self.contracts, self.snapshots, self.launcher, lambda: NOW)

    def upload_and_kick(self, key: str, data: bytes) -> tuple[Upload, list[dict[str, Any]]]:
        """Upload, ingest, and hand every announcement to the kickoff; the entry and the outcomes."""
        entry = self.upload(key, data)
        assert entry is not None and entry.status == "valid" and entry.output_key, entry
        copy = self.objects.get(BUCKET, entry.output_key)
        assert copy is not None
        self.snapshots.put_validated(entry.output_key, copy.body, entry.upload_id)
        outcomes = [handle_trigger(self.training, trigger_from_message(m)) for m in self.queue.receive()]
        return entry, outcomes

    def finish_runs(self) -> None:
        for run_id, dataset in self.launcher.launched:
            self.runs.release(dataset, run_id, succeeded=True, now=NOW)


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline()


@pytest.fixture(scope="module")
def days() -> tuple[list[str], list[list[str]]]:
    return breast_cancer_rows()


def test_a_reexported_gzip_of_the_same_rows_is_not_new_data_and_starts_no_run(pipeline, days):
    header, rows = days
    _, outcomes = pipeline.upload_and_kick(f"incoming/{DATASET}/day1.csv", to_csv(header, rows[:400]))
    assert [o["action"] for o in outcomes] == ["launch"]  # 400 new rows >= 300
    pipeline.finish_runs()
    # The same rows again: another name, gzip, another row order.
    export = gzip.compress(to_csv(header, rows[:400][::-1]))
    _, outcomes = pipeline.upload_and_kick(f"incoming/{DATASET}/day1-export.csv.gz", export)
    assert [o["action"] for o in outcomes] == ["skip"], outcomes
    assert "0 new valid rows" in outcomes[0]["reasons"][0]
    assert len(pipeline.launcher.launched) == 1
    assert pipeline.runs.state(DATASET, NOW).rows_since_training == 0


def test_the_report_and_the_ledger_say_how_many_rows_repeat_earlier_uploads(pipeline, days):
    header, rows = days
    first, _ = pipeline.upload_and_kick(f"incoming/{DATASET}/day1.csv", to_csv(header, rows[:200]))
    assert first.report_key is not None
    identity = pipeline.json(first.report_key)["row_identity"]
    assert identity == {
        "by": "row_id",
        "column": "row_id",
        "earlier_uploads": 0,
        "repeated_rows": 0,
        "changed_rows": 0,
        "new_rows": 200,
    }
    assert (first.new_rows, first.repeated_rows) == (200, 0)
    # 150 rows of day 1 again, 50 of them with another diagnosis, and 100 rows never seen.
    again = [list(r) for r in rows[50:200]]
    for row in again[:50]:
        row[-1] = "1" if row[-1] == "0" else "0"
    second, _ = pipeline.upload_and_kick(
        f"incoming/{DATASET}/day2.csv", to_csv(header, again + rows[200:300])
    )
    assert second.report_key is not None
    identity = pipeline.json(second.report_key)["row_identity"]
    assert identity["earlier_uploads"] == 1
    assert (identity["repeated_rows"], identity["changed_rows"], identity["new_rows"]) == (150, 50, 150)
    assert (second.new_rows, second.repeated_rows) == (150, 150)


def test_a_changed_row_is_compared_with_its_newest_earlier_copy(pipeline, days):
    header, rows = days
    original = rows[:100]
    relabelled = [[*r[:-1], "1" if r[-1] == "0" else "0"] for r in original]
    pipeline.upload_and_kick(f"incoming/{DATASET}/a.csv", to_csv(header, original))
    pipeline.upload_and_kick(f"incoming/{DATASET}/b.csv", to_csv(header, relabelled))
    back, _ = pipeline.upload_and_kick(f"incoming/{DATASET}/c.csv", to_csv(header, original[::-1]))
    assert back.report_key is not None
    identity = pipeline.json(back.report_key)["row_identity"]
    # Equal to a's rows, but b (newer) changed them: going back is a change again.
    assert (identity["earlier_uploads"], identity["repeated_rows"], identity["changed_rows"]) == (2, 100, 100)


def test_without_a_row_id_a_row_is_identified_by_its_values(pipeline):
    pipeline.upload_and_kick("incoming/iris/a.csv", b"a,label\n1.5,yes\n2.5,no\n2.5,no\n")
    # The same values written differently (column order, number format, quoting), and one new row.
    second, _ = pipeline.upload_and_kick("incoming/iris/b.csv", b'label,a\n"yes",1.50\nno,25e-1\nno,3\n')
    assert second.report_key is not None
    identity = pipeline.json(second.report_key)["row_identity"]
    assert identity == {
        "by": "content",
        "column": None,
        "earlier_uploads": 1,
        "repeated_rows": 2,
        "changed_rows": 0,
        "new_rows": 1,
    }


def test_a_digest_that_cannot_be_read_is_left_out_and_its_rows_count_as_new(pipeline, days):
    header, rows = days
    first, _ = pipeline.upload_and_kick(f"incoming/{DATASET}/day1.csv", to_csv(header, rows[:100]))
    (digest,) = pipeline.keys(f"profiles/{DATASET}/rows/")
    assert digest.endswith(f"-{first.upload_id}.rows")
    pipeline.objects.put(BUCKET, digest, b"not a digest")
    second, _ = pipeline.upload_and_kick(f"incoming/{DATASET}/day2.csv", to_csv(header, rows[:150]))
    assert second.report_key is not None
    identity = pipeline.json(second.report_key)["row_identity"]
    assert (identity["earlier_uploads"], identity["repeated_rows"], identity["new_rows"]) == (0, 0, 150)
