"""serverless-mlops: the Chalice app. It creates the app, installs the middleware and registers one
blueprint per area; the handlers live in ``chalicelib/entrypoints/`` and the logic behind them in the
stages of ``chalicelib/`` (docs/ARCHITECTURE.md)."""

from __future__ import annotations

from chalice import Chalice

from chalicelib import observability
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

app = Chalice(app_name=observability.APP_NAME)
# Middleware first: Chalice attaches it to the handlers registered after it.
observability.install(app)
for area in (auth, health, datasets, training, registry, predictions, batch, monitoring, rollouts, console):
    app.register_blueprint(area.bp)
