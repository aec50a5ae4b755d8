"""What the CLI tells a person to type works where they are (issue 18, "friction"): the curl line
``mlops tokens create`` prints names the API's address in use, not a fixed port."""

from __future__ import annotations

import json

import pytest

from chalicelib.adapters.memory.tokens import MemoryTokenRecords
from chalicelib.auth import TokenStore
from mlops import localcloud, tokens


def _curl_line(capsys: pytest.CaptureFixture[str]) -> str:
    store = TokenStore(MemoryTokenRecords())
    assert tokens._create(store, "dana", "viewer", replace=False, created_by="tests") == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "curl " in line]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def no_running_cloud(monkeypatch, tmp_path):
    monkeypatch.setattr(localcloud, "STATE_FILE", tmp_path / "local.json")
    for name in ("MLOPS_API_URL", "MLOPS_API_PORT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "local.json"


def test_the_curl_line_names_the_running_local_clouds_api(no_running_cloud, monkeypatch, capsys):
    no_running_cloud.write_text(
        json.dumps(
            {"endpoint": "http://127.0.0.1:4599", "api_url": "http://127.0.0.1:8123", "stage": "local"}
        )
    )
    monkeypatch.setenv("MLOPS_API_PORT", "9999")  # the state file says where it runs: it wins
    assert _curl_line(capsys).endswith("http://127.0.0.1:8123/models")


def test_without_a_running_cloud_the_curl_line_names_the_port_mlops_up_would_take(
    no_running_cloud, monkeypatch, capsys
):
    monkeypatch.setenv("MLOPS_API_PORT", "8124")
    assert _curl_line(capsys).endswith("http://127.0.0.1:8124/models")
    monkeypatch.delenv("MLOPS_API_PORT")
    assert _curl_line(capsys).endswith(f"http://127.0.0.1:{localcloud.DEFAULT_API_PORT}/models")


def test_a_deployed_stages_curl_line_names_its_api_url(no_running_cloud, monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_API_URL", "https://abc.execute-api.eu-west-1.amazonaws.com/api/")
    assert _curl_line(capsys).endswith("https://abc.execute-api.eu-west-1.amazonaws.com/api/models")
    monkeypatch.delenv("MLOPS_API_URL")
    monkeypatch.setenv("MLOPS_STAGE", "prod")  # no local address for a deployed stage
    assert "127.0.0.1" not in _curl_line(capsys)
