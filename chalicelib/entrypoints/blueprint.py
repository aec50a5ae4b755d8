"""The blueprint every area uses: errors mapped to HTTP once, declared bodies, observability on event handlers.

Three things Chalice's ``Blueprint`` does not do on its own:

* Routes: an error of the project's hierarchy becomes its HTTP answer here (``InvalidInput`` 400,
  ``NotFound`` 404, ``Conflict`` 409, ``IntegrityFailure`` 500 naming the artifact), so no view
  repeats the mapping. Anything else is a bug: Chalice answers 500 without details. No error
  message and no read's (GET) JSON answer carries a token back: they are masked here.
* Bodies: a route that takes JSON declares its body (``body=``, a ``chalicelib.http.Body`` or
  anything with the same ``parse``/``field_names`` classmethods, such as ``Contract``), and its view
  reads it with ``json_body(bp, TheBody)``: the document checked against the declaration, unknown
  fields and numbers out of range refused with a 400 naming the field. The declaration stays on the
  view (``request_body``), so tests enumerate every JSON route's body from the app.
* Event handlers: Lambda imports a blueprint's event handler by its module path
  (``chalicelib.entrypoints.<area>.<function>``), never ``app.py`` (aws/chalice#1566), so middleware
  registered on the app would be missing there. ``Area`` attaches the observability middleware when
  the handler is declared; registering the blueprint on the app attaches the same list again.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
from chalice import (
    BadRequestError,
    Blueprint,
    Chalice,
    ChaliceViewError,
    ConflictError,
    NotFoundError,
    Response,
)
from chalice.app import Request

from chalicelib import observability
from chalicelib.auth import redact_tokens
from chalicelib.errors import Conflict, IntegrityFailure, InvalidInput, MlopsError, NotFound
from chalicelib.http import MAX_BODY_BYTES, MAX_VERSION, parse_json_body
from chalicelib.settings import DATASET_NAME

_encode = msgspec.json.Encoder().encode


def http_error(exc: MlopsError) -> Exception:
    """The Chalice error (an HTTP answer) for an error of the project's hierarchy. A message may
    quote what the client sent (a path parameter, a field): a token in it is masked."""
    message = redact_tokens(str(exc))
    if isinstance(exc, InvalidInput):
        return BadRequestError(message)
    if isinstance(exc, NotFound):
        return NotFoundError(message)
    if isinstance(exc, Conflict):
        return ConflictError(message)
    if isinstance(exc, IntegrityFailure):
        return ChaliceViewError(f"a stored artifact failed its integrity check: {message}")
    return ChaliceViewError(message)


def _mapped(view: Callable[..., Any], reads: bool = False) -> Callable[..., Any]:
    """The view with the project's errors mapped to HTTP; a read's (GET) JSON answer with every
    token-like string masked (``chalicelib.auth.redact_tokens``): what it shows may quote what a
    client wrote (an upload's key, a problem naming it)."""

    @functools.wraps(view)
    def answer(*args: Any, **kwargs: Any) -> Any:
        try:
            result = view(*args, **kwargs)
            return redact_tokens(result) if reads and isinstance(result, dict | list) else result
        except InvalidInput as exc:
            details = exc.details()
            if not details:
                raise http_error(exc) from exc
            body = {"Code": "BadRequestError", "Message": str(exc), **details}
            return Response(status_code=400, body=redact_tokens(body))
        except MlopsError as exc:
            raise http_error(exc) from exc

    return answer


class RequestBody[T](Protocol):
    """What a route declares as its JSON body: a type whose ``parse`` checks a document (a
    ``chalicelib.http.Body`` parses into itself) and names the fields it takes."""

    @classmethod
    def parse(cls, doc: Any) -> T: ...

    @classmethod
    def field_names(cls) -> tuple[str, ...]: ...


class Area(Blueprint):
    """A Chalice blueprint for one area of the app (see the module docstring)."""

    def route(
        self, path: str, body: type[RequestBody[Any]] | None = None, **kwargs: Any
    ) -> Callable[..., Any]:
        register = super().route(path, **kwargs)

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            mapped = _mapped(view, reads=list(kwargs.get("methods") or ["GET"]) == ["GET"])
            mapped.request_body = body  # type: ignore[attr-defined]
            register(mapped)
            return view

        return decorator

    def _get_middleware_handlers(self, event_type: str) -> list[Any]:
        return observability.middleware_for(event_type)


# --- request parts every area checks the same way ---------------------------------------------------

NAME_RULE = "1-63 lowercase letters, digits, '-' or '_'"


def dataset_name(name: str, kind: str = "dataset") -> str:
    """A dataset's (or its model's) name from the path; 400 naming the rule otherwise."""
    if not DATASET_NAME.fullmatch(name):
        raise InvalidInput(f"{kind} name {_clip(name)!r} must be {NAME_RULE}")
    return name


_UPLOAD_ID = re.compile(r"[0-9a-f]{24}")  # chalicelib.ingest.uploads.upload_id_for


def upload_id(value: str) -> str:
    """An upload id from the path; one that cannot be an id (24 lowercase hex characters) names no
    upload: 404, answered without a lookup (a key past DynamoDB's limits would otherwise be a 500)."""
    if not _UPLOAD_ID.fullmatch(value):
        raise NotFound(f"no upload with id {_clip(value)!r} (upload ids are 24 lowercase hex characters)")
    return value


def model_name(name: str) -> str:
    return dataset_name(name, "model")


_VERSION = re.compile(r"[0-9]{1,8}")  # ASCII digits only: str.isdigit() takes '²', which int() refuses


def version_number(version: str) -> int:
    if not _VERSION.fullmatch(version) or not 1 <= int(version) <= MAX_VERSION:
        raise InvalidInput(f"version: {_clip(version)!r} is not a version number (1, 2, 3...)")
    return int(version)


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_body[T](area: Blueprint, body: type[RequestBody[T]], max_bytes: int = MAX_BODY_BYTES) -> T:
    """The request's JSON body, parsed strictly and checked against its declaration
    (``chalicelib.http``): unknown fields and numbers out of range are a 400 naming the field."""
    raw = area.current_request.raw_body
    doc = parse_json_body(raw.encode() if isinstance(raw, str) else raw, max_bytes=max_bytes)
    return body.parse(doc)


# --- the lean path of the busiest routes -------------------------------------------------------------


class LeanRequest:
    """What a view on the lean path sees as ``current_request``: the body and the request context
    without Chalice's parsing of headers and query string; anything else a view asks for is read
    from a full Chalice ``Request``, made then."""

    def __init__(self, event: dict[str, Any], context: Any) -> None:
        self._event = event
        self.lambda_context = context
        self.context = event["requestContext"]
        self.path = self.context["resourcePath"]
        self._full: Request | None = None

    @property
    def raw_body(self) -> bytes:
        """The body's bytes, read as Chalice's ``Request.raw_body`` reads a body that is not base64."""
        body = self._event.get("body")
        return b"" if body is None else body.encode("utf-8") if isinstance(body, str) else body

    def __getattr__(self, name: str) -> Any:
        if self._full is None:
            self._full = Request(self._event, self.lambda_context)
        return getattr(self._full, name)


def _content_type(headers: Any) -> str | None:
    """The Content-Type header as Chalice reads it (case-insensitive, the last spelling wins)."""
    found = None
    if headers:
        for name, value in headers.items():
            if name.lower() == "content-type":
                found = value
    return found


def answer_lean(app: Chalice, event: Any, context: Any, paths: frozenset[tuple[str, str]]) -> Any:
    """Answer an API Gateway event for one of ``paths`` (method, resource path) without Chalice's
    per-request machinery, or None to leave it to Chalice.

    Chalice makes a handler object, collects the middleware from the app's list, builds the chain,
    parses every header into a case-insensitive mapping, matches the content type three times (the
    request's, then the response's twice, for binary types) and encodes the answer with json.dumps:
    ~40-90 us per request, as much as scoring a model. Here, for a plain JSON request: the same view
    function Chalice would call (errors mapped by ``_mapped``, the same 4xx bodies), the same log keys
    and metrics flush as the API middleware, the same unhandled-error 500; the answer's body encoded
    with msgspec. Anything unusual (another method or path, a content type other than
    ``application/json``, a base64 body, other middleware such as the tracer) goes to Chalice."""
    request_context = event.get("requestContext") if type(event) is dict else None
    if type(request_context) is not dict:
        return None
    method, path = request_context.get("httpMethod"), request_context.get("resourcePath")
    if (method, path) not in paths or event.get("isBase64Encoded"):
        return None
    content_type = _content_type(event.get("headers"))
    if content_type is not None and content_type.lower() != "application/json":
        return None  # Chalice's rules: a 415, or a type with parameters it accepts
    entry = app.routes.get(str(path), {}).get(str(method))
    if entry is None or entry.cors is not None or _http_chain(app) is None:
        return None
    parameters = event.get("pathParameters") or {}
    try:
        arguments = {name: parameters[name] for name in entry.view_args}
    except KeyError:
        return None
    app.lambda_context = context
    app.current_request = LeanRequest(event, context)
    observability.http_request_noter()(context, request_context)
    try:
        try:
            answer = entry.view_function(**arguments)
        except ChaliceViewError as exc:
            answer = Response(
                body={"Code": type(exc).__name__, "Message": str(exc)}, status_code=exc.STATUS_CODE
            )
        if not isinstance(answer, Response):
            try:
                return {
                    "headers": {},
                    "multiValueHeaders": {},
                    "statusCode": 200,
                    "body": _encode(answer).decode(),
                }
            except (TypeError, msgspec.EncodeError):  # a type msgspec does not write: Chalice's json.dumps
                answer = Response(body=answer)
        return answer.to_dict(app.api.binary_types)
    except Exception:
        app.log.error("Caught exception for path %s", path, exc_info=True)
        body: Any = {"Code": "InternalServerError", "Message": "An internal server error occurred."}
        headers: dict[str, str] = {}
        if app.debug:
            import traceback

            body, headers = "".join(traceback.format_exc()), {"Content-Type": "text/plain"}
        return Response(body=body, headers=headers, status_code=500).to_dict(app.api.binary_types)
    finally:
        if observability.metrics.metric_set:
            observability.metrics.flush_metrics()


def _http_chain(app: Chalice) -> Any:
    """The app's API middleware when it is the project's own alone (no tracer, nothing added);
    checked once per app (middleware is registered when the app is made)."""
    checked = app.__dict__.get("_lean_chain")
    if checked is None:
        chain = list(app._get_middleware_handlers("http"))
        checked = app.__dict__["_lean_chain"] = (
            chain if chain == [observability.http_middleware()] else False,
        )
    return checked[0] or None
