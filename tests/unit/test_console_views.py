"""What the console's pages show, shaped from the stores' records (chalicelib/console/views.py), and
the rule the console's script keeps: API data is never parsed as HTML."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.console import STATIC, views
from chalicelib.ingest.uploads import Upload


def _upload(n: int, dataset: str | None = "sales", status: str = "valid", **extra) -> Upload:
    return Upload(
        upload_id=f"{n:024x}",
        bucket="b",
        key=f"incoming/{dataset}/day{n}.csv",
        dataset=dataset,
        version_id="v",
        etag="e",
        size=10,
        sha256="s",
        event_time=f"2026-11-{n:02d}T00:00:00Z",
        recorded_at=f"2026-11-{n:02d}T00:00:01+00:00",
        status=status,
        **extra,
    )


QUIET_QUEUE = {"queue": "q", "visible": 0, "in_flight": 0, "dlq": "q-dlq", "dlq_depth": 0}


def _overview(**overrides):
    args = {"contracts": [], "uploads": [], "models": [], "runs": [], "queues": [QUIET_QUEUE], "alarms": []}
    return views.overview(**{**args, **overrides})


def test_a_quiet_system_has_no_warning():
    assert _overview()["warnings"] == []


def test_a_dead_letter_queue_that_is_not_empty_is_a_warning_naming_it():
    full = {**QUIET_QUEUE, "queue": "ingest", "dlq": "ingest-dlq", "dlq_depth": 3}
    assert _overview(queues=[QUIET_QUEUE, full])["warnings"] == [
        "ingest-dlq: 3 message(s) in the dead-letter queue of ingest"
    ]


def test_an_alarm_in_alarm_is_a_warning_and_other_states_are_not():
    alarms = [
        {"name": "a", "state": "ALARM"},
        {"name": "b", "state": "OK"},
        {"name": "c", "state": "INSUFFICIENT_DATA"},
    ]
    assert _overview(alarms=alarms)["warnings"] == ["alarm a is ALARM"]


def test_versions_waiting_for_approval_are_counted_in_a_warning():
    models = [
        views.model_row(
            "m", 1, [{"version": 1, "status": "champion"}, {"version": 2, "status": "pending_approval"}]
        )
    ]
    overview = _overview(models=models)
    assert overview["models"][0]["pending_approval"] == [2]
    assert overview["warnings"] == ["1 model version(s) waiting for approval"]


def test_datasets_count_their_uploads_by_status_and_include_contracts_without_uploads():
    uploads = [
        _upload(1),
        _upload(2, status="invalid"),
        _upload(3, revoked_at="2026-11-04T00:00:00Z"),
        _upload(4, dataset=None, status="unroutable"),
    ]
    overview = _overview(contracts=["empty", "sales"], uploads=uploads)
    assert overview["datasets"] == [
        {"dataset": "empty", "contract": True, "uploads": 0, "by_status": {}, "last_upload_at": None},
        {
            "dataset": "sales",
            "contract": True,
            "uploads": 3,
            "by_status": {"invalid": 1, "revoked": 1, "valid": 1},
            "last_upload_at": "2026-11-03T00:00:01+00:00",
        },
    ]
    assert overview["uploads_total"] == 4


@given(st.lists(st.integers(min_value=1, max_value=28), unique=True, max_size=40))
def test_recent_uploads_are_the_newest_first_and_at_most_the_limit(days):
    overview = _overview(uploads=[_upload(d) for d in days])
    shown = [u["recorded_at"] for u in overview["uploads"]]
    assert shown == sorted(shown, reverse=True)
    assert len(shown) == min(len(days), views.RECENT_UPLOADS)


def test_runs_in_flight_are_those_not_over():
    runs = [
        {"run_id": "a", "status": "succeeded", "created_at": "1"},
        {"run_id": "b", "status": "running", "created_at": "2"},
        {"run_id": "c", "status": "submitted", "created_at": "3"},
        {"run_id": "d", "status": "failed", "created_at": "4"},
    ]
    overview = _overview(runs=runs)
    assert [r["run_id"] for r in overview["runs_in_flight"]] == ["c", "b"]
    assert [r["run_id"] for r in overview["runs"]] == ["d", "c", "b", "a"]


def test_the_drift_series_lines_up_each_feature_with_the_uploads_that_have_a_drift_report():
    rows = [views.upload_row(_upload(n)) for n in (3, 1, 2)]
    reports = {
        rows[1]["upload_id"]: {"drift": {"verdict": "reference"}},  # the reference: no figures
        rows[2]["upload_id"]: {"drift": {"verdict": "stable", "features": {"x": {"psi": 0.01}}}},
        rows[0]["upload_id"]: {
            "drift": {
                "verdict": "drifted",
                "features": {"x": {"psi": 0.9}, "y": {"psi": 0.2}},
                "drifted_features": ["x"],
            }
        },
    }
    series = views.drift_series(rows, reports)
    assert [u["upload_id"] for u in series["uploads"]] == [rows[2]["upload_id"], rows[0]["upload_id"]]
    assert series["features"] == {"x": [0.01, 0.9], "y": [None, 0.2]}
    assert series["drifted"] == {"x": [False, True], "y": [None, False]}


def test_the_console_script_never_parses_data_as_html():
    script = (STATIC / "console.js").read_text(encoding="utf-8")
    assert not re.search(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function", script
    )
