"""The local API server: API Gateway's answer to a failing authorizer, and room for bursts.

``api_server_class()`` is Chalice's threaded dev server with a listen backlog of 1024 instead of
socketserver's 5 (a burst of 50 requests had 20-70% of its connections reset).

API Gateway's answer to a failing authorizer, for Chalice's local gateway:

A Lambda token authorizer refuses a request by failing with the message ``"Unauthorized"``
(``chalicelib.auth.Unauthorized``): API Gateway answers 401 ``{"message":"Unauthorized"}``. If the
authorizer fails any other way, API Gateway answers 500 ``{"message": null}``
(``AuthorizerConfigurationException``). Chalice's local gateway,
``chalice.local.LocalGatewayAuthorizer.authorize`` (behind both ``chalice.test.Client`` and
``chalice.local.LocalDevServer``, i.e. the tests and ``mlops up``), lets the exception propagate
instead: the test client raises it and the dev server drops the connection. So the API would behave
differently on the local cloud than in AWS exactly where it matters, on a bad token.

``install_gateway_auth_semantics()`` wraps that method (once; calling it again does nothing) so the
local gateway answers as API Gateway does, and names the Authorization header of a request to no
route hashed, as API Gateway does, not echoed (a token). What chalice already does right is untouched: no
Authorization header is a 401 before any authorizer runs, and a policy that does not cover the
route is a 403.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

_log = logging.getLogger(__name__)
_MARK = "__mlops_gateway_auth_semantics__"


def _install_missing_route_answer() -> None:
    """A request to no route with an Authorization header: Chalice's local gateway answers 403 with
    the header's value in the message (a bearer token echoed back, into logs and terminals). API
    Gateway names it hashed (SHA-256, Base64); so does this. Idempotent."""
    import base64
    import hashlib

    from chalice import local

    original = local.LocalGateway.handle_request
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def handle_request(self: Any, method: str, path: str, headers: Any, body: Any) -> Any:
        try:
            return original(self, method, path, headers, body)
        except local.ForbiddenError as exc:
            header = headers.get("authorization") or headers.get("Authorization")
            if header is not None and exc.body and b"Authorization=" in exc.body:
                hashed = base64.b64encode(hashlib.sha256(header.encode()).digest()).decode()
                exc.body = (
                    '{"message":"Invalid key=value pair (missing equal-sign) in Authorization header '
                    f"(hashed with SHA-256 and encoded with Base64): '{hashed}'.\"}}"
                ).encode()
            raise

    setattr(handle_request, _MARK, True)
    local.LocalGateway.handle_request = handle_request  # type: ignore[method-assign]


def install_gateway_auth_semantics() -> None:
    """Make the local gateway answer 401/500 to a failing authorizer as API Gateway does, and a
    request to no route without echoing its Authorization header. Idempotent."""
    from chalice import local

    _install_missing_route_answer()
    original = local.LocalGatewayAuthorizer.authorize
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def authorize(self: Any, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
        try:
            return original(self, raw_path, lambda_event, lambda_context)
        except local.LocalGatewayException:
            raise  # already an API Gateway answer (the missing-header 401, the policy's 403)
        except Exception as exc:
            request_id = lambda_context.aws_request_id
            if str(exc) == "Unauthorized":
                raise local.NotAuthorizedError(
                    {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": "UnauthorizedException"},
                    b'{"message":"Unauthorized"}',
                ) from exc
            # In AWS this traceback would be in the authorizer's CloudWatch log; here, in ours.
            _log.exception("the authorizer of %s failed", raw_path)
            raise local.InvalidAuthorizerError(
                {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": "AuthorizerConfigurationException"},
                b'{"message": null}',
            ) from exc

    setattr(authorize, _MARK, True)
    local.LocalGatewayAuthorizer.authorize = authorize  # type: ignore[method-assign]


# How many connections the kernel queues for the local API before accepting them. socketserver's
# default is 5: a burst of requests (a script, a page loading its data) overflowed it, and Linux then
# reset 20-70% of the connections. werkzeug (moto's server) queues 128; this is a local tool, so room
# for any burst a person makes costs nothing (Linux caps it at net.core.somaxconn).
API_LISTEN_BACKLOG = 1024


def api_server_class() -> type:
    """Chalice's threaded dev server with room for bursts: a deep listen queue, and request threads
    that never hold the process up when it stops (daemon threads, as Chalice's own)."""
    from chalice.local import ThreadedHTTPServer

    class BurstTolerantServer(ThreadedHTTPServer):
        request_queue_size = API_LISTEN_BACKLOG
        daemon_threads = True
        # Not ``block_on_close``: server_close() would join every request thread still running.
        block_on_close = False

    return BurstTolerantServer
