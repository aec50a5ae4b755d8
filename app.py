"""serverless-mlops: the Chalice app. It creates the app, installs the middleware and registers one
blueprint per area; the handlers live in ``chalicelib/entrypoints/`` and the logic behind them in the
stages of ``chalicelib/`` (docs/ARCHITECTURE.md)."""

from __future__ import annotations

from typing import Any

from chalice import Chalice

from chalicelib import bootstrap, observability
from chalicelib.entrypoints import (
    auth,
    batch,
    console,
    datasets,
    health,
    monitoring,
    predictions,
    registry,
    rollouts,
    training,
)
from chalicelib.entrypoints.blueprint import answer_lean


class App(Chalice):
    """Chalice, with the predict routes answered on a lean path (``blueprint.answer_lean``: the same
    views, errors, log keys and metrics, without Chalice's per-request machinery). Everything else,
    and any predict request out of the ordinary, is Chalice's."""

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        answered = answer_lean(self, event, context, predictions.LEAN_ROUTES)
        return answered if answered is not None else super().__call__(event, context)


app = App(app_name=observability.APP_NAME)
# Middleware first: Chalice attaches it to the handlers registered after it.
observability.install(app)
for area in (auth, health, datasets, training, registry, predictions, batch, monitoring, rollouts, console):
    app.register_blueprint(area.bp)

# Lambda SnapStart (published versions of the API function): what the snapshot keeps and what each
# restored container makes again (chalicelib.bootstrap.before_snapshot, after_restore).
bootstrap.register_snapshot_hooks()
