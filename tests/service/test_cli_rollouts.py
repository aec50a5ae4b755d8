"""``mlops models rollout|pause|resume|abort|rollout-status|show``: the commands' output, their API
calls answered by the rollout service on in-memory adapters (as the routes answer them; errors as
the API's 404/409)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib import errors
from chalicelib.adapters.memory.notifier import MemoryNotifier
from chalicelib.adapters.memory.registry import MemoryRegistry
from chalicelib.registry import rollout, rollouts, service
from chalicelib.validation import Contract, NoContract
from mlops import models
from mlops.cli import main

MODEL = "iris"
WHO = "alice (approver)"


def clock() -> datetime:
    return datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


class NoContracts:
    def get(self, dataset: str) -> Contract:
        raise NoContract(dataset)


@pytest.fixture
def reg() -> MemoryRegistry:
    """v1 champion, v2 pending approval (judged against v1)."""
    reg = MemoryRegistry()
    for n in (1, 2):
        reg.register_version(MODEL, {"run_id": f"run-{n}", "family": "logistic_regression"})
    reg.approve(MODEL, 1, "evaluator", "first", None, "candidate")
    reg.set_status(MODEL, 2, "pending_approval", "evaluator", "manual mode", gates={"evaluated_against": 1})
    return reg


@pytest.fixture
def cli(reg, monkeypatch):
    notifier = MemoryNotifier()
    calls: list[tuple[str, str, Any]] = []

    def call(method: str, path: str, body: Any = None, **_: Any) -> Any:
        calls.append((method, path, body))
        model = path.split("/")[2]
        try:
            if method == "GET" and path.endswith("/rollout"):
                return rollouts.rollout_status(reg, model)
            if method == "GET":
                return service.show_model(reg, model)
            if path.endswith("/rollout"):
                request = {k: v for k, v in body.items() if k not in ("version", "reason")} or None
                pointer = rollouts.start_rollout(
                    reg, NoContracts(), notifier, model, body["version"], WHO, body["reason"], request, clock
                )
            elif path.endswith("/abort"):
                pointer = rollouts.abort(reg, notifier, model, WHO, body["reason"], clock)
            elif path.endswith("/pause"):
                pointer = rollouts.pause(reg, model, WHO, body["reason"], clock)
            else:
                pointer = rollouts.resume(reg, model, WHO, body["reason"], clock)
            return {"model": model, "rollout": pointer}
        except errors.NotFound as exc:
            raise models.ApiError(404, str(exc)) from None
        except errors.Conflict as exc:
            raise models.ApiError(409, str(exc)) from None

    monkeypatch.setattr(models, "call", call)
    run = lambda *argv: main(["models", *argv])  # noqa: E731
    run.calls = calls  # type: ignore[attr-defined]
    return run


def test_rollout_sends_the_schedule_given_and_prints_the_progress(cli, capsys):
    assert cli("rollout", MODEL, "2", "--reason", "try it", "--linear", "25", "--every", "10m") == 0
    assert cli.calls[-1] == (
        "POST",
        f"/models/{MODEL}/rollout",
        {"version": 2, "reason": "try it", "linear": 25.0, "every": "10m"},
    )
    text = capsys.readouterr().out
    assert (
        "rollout r1 of v2 against champion v1: active, step 1 of 4, 25% of the traffic since 2026-12-01 10:00:00 UTC"
        in text
    )
    assert "schedule: linear 25% -> 50% -> 75% -> 100%, each step held 10 min 0 s" in text
    assert f"started 2026-12-01 10:00:00 UTC by {WHO}: try it" in text
    assert "guards: no figures yet" in text and "None" not in text


def test_pause_resume_and_abort_print_the_rollout_and_status_lists_its_events(cli, capsys):
    cli("rollout", MODEL, "2", "--reason", "try it", "--canary", "5")
    assert cli("pause", MODEL, "--reason", "a dashboard looks odd") == 0
    assert "against champion v1: paused, step 1 of 2, 5% of the traffic" in capsys.readouterr().out
    cli("resume", MODEL, "--reason", "fine")
    assert cli("abort", MODEL, "--reason", "a customer complained") == 0
    text = capsys.readouterr().out
    assert "rollout r1 of v2 against champion v1: aborted at 2026-12-01 10:00:00 UTC" in text
    assert "aborted: a customer complained" in text
    assert cli.calls[-1] == ("POST", f"/models/{MODEL}/rollout/abort", {"reason": "a customer complained"})
    assert cli("rollout-status", MODEL) == 0
    lines = capsys.readouterr().out.splitlines()
    events = [line.split()[4] for line in lines if line.lstrip().startswith("#")]
    assert events == ["start", "pause", "resume", "abort"]
    assert any("5% -> 0%" in line and "abort" in line for line in lines)


def test_show_prints_the_rollout_and_its_last_guard_figures_as_a_table(cli, reg, capsys):
    cli("rollout", MODEL, "2", "--reason", "try it")
    current = rollout.Rollout.from_dict(reg.rollout(MODEL))
    evaluation = {
        "requests": 412,
        "window": "2026-12-01T10:00:00+00:00/2026-12-01T10:15:00+00:00",
        "guards": [
            {"name": "error_rate", "value": 0.0, "limit": 0.01, "breached": False},
            {"name": "disagreement", "value": 0.031, "limit": 0.2, "breached": False},
            {"name": "metric", "value": None, "limit": None, "breached": None},
        ],
    }
    reg.change_rollout(*current.advance("2026-12-01T10:15:00+00:00", "every guard held", evaluation))
    capsys.readouterr()
    assert cli("show", MODEL) == 0
    text = capsys.readouterr().out
    assert "v2  rolling_out" in text
    assert "step 2 of 2, 100% of the traffic since 2026-12-01 10:15:00 UTC" in text
    assert "last evaluation: requests 412, window 2026-12-01T10:00:00+00:00/2026-12-01T10:15:00+00:00" in text
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.startswith("    ")}
    assert rows["guard"] == ["value", "limit", "breached"]
    assert rows["error_rate"] == ["0", "0.01", "no"] and rows["disagreement"] == ["0.031", "0.2", "no"]
    assert rows["metric"] == ["-", "-", "-"]


def test_guard_figures_as_a_map_by_name_are_shown_too():
    import io

    out = io.StringIO()
    models.print_guards({"guards": {"latency_p99": {"value": 12.5, "limit": 9.0, "breached": True}}}, out)
    assert out.getvalue().split() == [
        "guard",
        "value",
        "limit",
        "breached",
        "latency_p99",
        "12.5",
        "9",
        "yes",
    ]


def test_a_refused_rollout_prints_the_api_error(cli, capsys):
    assert cli("rollout", MODEL, "1", "--reason", "x") == 1
    assert "error 409: iris v1 is the champion already: nothing to roll out" in capsys.readouterr().err
    assert cli("abort", MODEL, "--reason", "x") == 1
    assert "error 409: iris has no rollout" in capsys.readouterr().err
    assert cli("rollout-status", MODEL) == 0
    assert capsys.readouterr().out.strip() == "iris has never had a rollout"
