"""The token authorizer, and which routes it guards.

Changing routes always need a token. Reading routes (and /predict) need one where
``MLOPS_AUTH_READS`` is true: the default, and so in every deployed stage; the local stage turns it
off in ``.chalice/config.json``. Decided at import, like the queue names.
"""

from __future__ import annotations

import os

from chalice import AuthResponse
from chalice.app import AuthRequest, Blueprint

from chalicelib import auth, bootstrap
from chalicelib.entrypoints.blueprint import Area

bp = Area(__name__)


@bp.authorizer(ttl_seconds=auth.AUTHORIZER_TTL_S)
def token_authorizer(auth_request: AuthRequest) -> AuthResponse:
    """Bearer tokens whose SHA-256 lives in SSM; the role decides which routes (chalicelib/auth.py)."""
    return auth.authorize(auth_request, bootstrap.tokens())


CHANGES = token_authorizer
READS = token_authorizer if os.environ.get("MLOPS_AUTH_READS", "true").lower() != "false" else None


def caller(area: Blueprint) -> str:
    """Who sent the current request (the token's name), for the audit trail."""
    return auth.caller_from(area.current_request)
