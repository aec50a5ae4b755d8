"""``mlops uploads show|models|revoke``: the commands' output, their API calls answered by the
revocation service on in-memory adapters (as the routes answer them; errors as the API's 404/409)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import errors
from chalicelib.revocation import service
from mlops import models, uploads
from mlops.cli import main
from mlops.datasets import breast_cancer_rows
from tests.service.test_revocation_service import ADMIN, DATASET, Revocable


@pytest.fixture
def world() -> tuple[Revocable, list[str]]:
    world = Revocable()
    header, rows = breast_cancer_rows()
    ids = world.uploads(rows, header, 2)
    world.version(ids, ids, "champion")
    return world, ids


@pytest.fixture
def cli(world, monkeypatch):
    revocable, _ = world

    def call(method: str, path: str, body: Any = None, **_: Any) -> Any:
        upload_id = path.split("/")[2]
        try:
            if path.endswith("/revoke"):
                return service.revoke(revocable.revocation, upload_id, ADMIN, body["reason"])
            if path.endswith("/models"):
                return service.models_of_upload(revocable.ledger, revocable.registry, upload_id)
            entry = revocable.ledger.get(upload_id)
            if entry is None:
                raise errors.NotFound(f"no upload with id {upload_id!r}")
            return entry.as_item()
        except errors.NotFound as exc:
            raise models.ApiError(404, str(exc)) from None
        except errors.Conflict as exc:
            raise models.ApiError(409, str(exc)) from None

    monkeypatch.setattr(uploads, "call", call)
    return lambda *argv: main(["uploads", *argv])


def test_revoke_prints_what_was_tainted_the_fallback_and_the_retrain(cli, world, capsys):
    _, (_, u2) = world
    assert cli("revoke", u2, "--reason", "wrong units") == 0
    out = capsys.readouterr().out
    assert f"upload {u2} revoked ({DATASET}); nothing was deleted" in out
    assert "tainted: v1; rejected while waiting: none" in out
    assert "the champion v1 is tainted: it answers no prediction" in out
    assert f"no former champion of {DATASET} is untainted" in " ".join(out.split())
    assert "retrain without the upload: launch" in out
    assert cli("revoke", u2, "--reason", "again") == 1
    assert f"error 409: upload {u2} was revoked already, by {ADMIN}" in capsys.readouterr().err


def test_models_lists_each_version_the_upload_reached_and_its_taint(cli, world, capsys):
    _, (u1, _) = world
    assert cli("models", u1) == 0
    out = capsys.readouterr().out
    assert (
        f"upload {u1} ({DATASET}): valid" in out
        and "v1" in out
        and "trained and evaluated on it (champion)" in out
    )
    cli("revoke", u1, "--reason", "consent withdrawn")
    capsys.readouterr()
    assert cli("models", u1) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"revoked by {ADMIN}" in out and "reason: consent withdrawn" in out
    assert f"tainted: trained and evaluated on upload {u1}, revoked by {ADMIN}: consent withdrawn" in out


def test_an_unknown_upload_is_an_error_naming_it(cli, capsys):
    assert cli("show", "0" * 24) == 1
    assert "error 404: no upload with id" in capsys.readouterr().err
