"""Structured logs, metrics and (optional) tracing, wired into Chalice as middleware.

* Logs: Powertools ``Logger``, JSON, with the Lambda function name (``<app>-<stage>-<handler>``),
  a ``handler`` key and a correlation id (the API request id, or the first SQS message id).
* Metrics: CloudWatch embedded metric format (EMF) through Powertools ``Metrics``.
* Tracing: only when ``MLOPS_TRACING=true``. Creating a ``Tracer`` imports the X-Ray SDK and costs
  ~0.4 s of cold start, so it is never created otherwise.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from chalice.app import Chalice, ConvertToMiddleware

SERVICE = "serverless-mlops"
APP_NAME = "serverless-mlops"  # Chalice's app_name (.chalice/config.json): Lambda names start with it
METRICS_NAMESPACE = "ServerlessMLOps"
# API Gateway request id for routes, first message id for SQS batches.
CORRELATION_ID_PATH = "requestContext.requestId || Records[0].messageId"

# Handlers that emit no metric (the health route, say) are normal here, not a mistake to warn about.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE))


def tracing_enabled(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("MLOPS_TRACING", "false").strip().lower() in {"1", "true", "yes"}


def handler_name(function_name: str | None, app_name: str) -> str:
    """``serverless-mlops-dev-ingest_upload`` -> ``ingest_upload``; the API function,
    ``serverless-mlops-dev``, -> ``api_handler`` (Chalice's naming)."""
    if not function_name:
        return "unknown"
    head = f"{app_name}-"
    if function_name.startswith(head):
        # <app>-<stage>-<handler>, or <app>-<stage> for the API: the stage never contains a dash.
        stage_and_handler = function_name[len(head) :].split("-", 1)
        return stage_and_handler[1] if len(stage_and_handler) == 2 else "api_handler"
    return function_name


def _tag_handler(app_name: str) -> Callable[[Any, Callable[[Any], Any]], Any]:
    def middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
        context = getattr(event, "lambda_context", None) or getattr(event, "context", None)
        # Thread-local: the local cloud runs several handlers at once in one process.
        logger.thread_safe_append_keys(
            handler=handler_name(getattr(context, "function_name", None), app_name)
        )
        return get_response(event)

    return middleware


# Chalice's event types other than API routes: each gets the full Powertools treatment.
EVENT_TYPES = ("sqs", "s3", "sns", "cloudwatch", "scheduled", "kinesis", "dynamodb", "pure_lambda")


def _http_middleware(app_name: str) -> Callable[[Any, Callable[[Any], Any]], Any]:
    """API routes: the same log keys for a few microseconds (issue 6's latency budget).

    Powertools' ``inject_lambda_context`` (a JMESPath lookup, state clearing, decorator plumbing) and
    ``log_metrics`` (an EMF flush per call) cost ~100-200 us per request: more than scoring a model.
    Here the container's keys are set once, the request id per request, and metrics are flushed only
    when a handler added some."""
    note = http_request_noter() if app_name == APP_NAME else request_noter(app_name)

    def middleware(request: Any, get_response: Callable[[Any], Any]) -> Any:
        note(request.lambda_context, request.context)
        try:
            return get_response(request)
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()

    return middleware


def request_noter(app_name: str) -> Callable[[Any, dict[str, Any] | None], None]:
    """What the API routes' middleware does before the view, also called by the lean route path
    (``chalicelib.entrypoints.blueprint.answer_lean``): the container's log keys once, the request's
    ids on every request."""

    def note(context: Any, request_context: dict[str, Any] | None) -> None:
        # The keys that do not change between requests, while the logger holds them: once per
        # container, again if anything cleared the logger's state (a flag would not know).
        if "handler" not in logger.get_current_keys():
            logger.append_keys(
                handler=handler_name(getattr(context, "function_name", None), app_name),
                function_name=getattr(context, "function_name", None),
                function_memory_size=getattr(context, "memory_limit_in_mb", None),
                function_arn=getattr(context, "invoked_function_arn", None),
            )
        # One call per request: the request ids (the correlation id is API Gateway's request id).
        logger.append_keys(
            correlation_id=(request_context or {}).get("requestId"),
            function_request_id=getattr(context, "aws_request_id", None),
        )

    return note


@functools.cache
def http_request_noter() -> Callable[[Any, dict[str, Any] | None], None]:
    """The one request noter of this process's API routes (the middleware's and the lean path's)."""
    return request_noter(APP_NAME)


@functools.cache
def _middleware() -> tuple[tuple[Any, str], ...]:
    """(middleware, event type) pairs in registration order, made once per process."""
    # Chalice runs middleware in registration order, the first registered outermost.
    inject = ConvertToMiddleware(
        logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH, clear_state=True)
    )
    tag = _tag_handler(APP_NAME)
    flush = ConvertToMiddleware(metrics.log_metrics)
    pairs: list[tuple[Any, str]] = []
    for event_type in EVENT_TYPES:
        pairs += [(inject, event_type), (tag, event_type), (flush, event_type)]
    pairs.append((_http_middleware(APP_NAME), "http"))
    if tracing_enabled():
        from aws_lambda_powertools import Tracer  # deferred: ~0.4 s import

        tracer = Tracer(service=SERVICE)
        pairs.append((ConvertToMiddleware(tracer.capture_lambda_handler), "all"))
    return tuple(pairs)


def http_middleware() -> Any:
    """The API routes' own middleware (the lean route path checks that it is the only one)."""
    return next(func for func, kind in _middleware() if kind == "http")


def middleware_for(event_type: str) -> list[Any]:
    """The middleware of one event type, as ``Chalice._get_middleware_handlers`` would list it."""
    return [func for func, kind in _middleware() if kind in (event_type, "all")]


def install(app: Chalice) -> None:
    """Register logging, metrics and (if enabled) tracing middleware on every handler."""
    if app.app_name != APP_NAME:
        raise ValueError(f"observability is set up for the app {APP_NAME!r}, not {app.app_name!r}")
    for func, event_type in _middleware():
        app.register_middleware(func, event_type)


def emit_dimensioned(dimensions: dict[str, str], figures: list[tuple[str, str, float]]) -> None:
    """One EMF document of ``figures`` (name, unit, value) under ``dimensions``, written now: the
    per-model figures of the monitor, which the shared ``metrics`` (one dimension set) cannot carry."""
    from aws_lambda_powertools.metrics import EphemeralMetrics

    if not figures:
        return
    ephemeral = EphemeralMetrics(namespace=metrics.namespace or METRICS_NAMESPACE, service=SERVICE)
    for dimension, label in dimensions.items():
        ephemeral.add_dimension(name=dimension, value=label)
    for name, unit, value in figures:
        ephemeral.add_metric(name=name, unit=unit, value=value)
    ephemeral.flush_metrics()
