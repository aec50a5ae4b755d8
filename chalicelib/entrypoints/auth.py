"""The token authorizer, and which routes it guards.

Changing routes always need a token. Reading routes (and /predict) need one where
``MLOPS_AUTH_READS`` is true: the default, and so in every deployed stage; the local stage turns it
off in ``.chalice/config.json``. Decided at import, like the queue names.
"""

from __future__ import annotations

import os
from typing import Any

from chalice import AuthResponse, IAMAuthorizer
from chalice.app import AuthRequest, Blueprint

from chalicelib import auth, bootstrap
from chalicelib.entrypoints.blueprint import Area

bp = Area(__name__)


@bp.authorizer(ttl_seconds=auth.AUTHORIZER_TTL_S)
def token_authorizer(auth_request: AuthRequest) -> AuthResponse:
    """Bearer tokens whose SHA-256 lives in SSM; the role decides which routes (chalicelib/auth.py)."""
    return auth.authorize(auth_request, bootstrap.tokens())


# MLOPS_AUTH: "tokens" (default: the bearer tokens above, roles in chalicelib/auth.py) or "iam": API
# Gateway checks SigV4 signatures and the caller's IAM policy decides which routes it may call
# (`mlops policies --api-role ROLE` prints the policy of each role); the audit trail records the
# caller's IAM ARN. Decided at import, like the queue names.
MODE = os.environ.get("MLOPS_AUTH", "tokens").lower()
if MODE not in ("tokens", "iam"):
    raise ValueError(f"MLOPS_AUTH={MODE!r}: expected 'tokens' or 'iam'")
_GUARD: Any = IAMAuthorizer() if MODE == "iam" else token_authorizer
CHANGES = _GUARD
READS = _GUARD if os.environ.get("MLOPS_AUTH_READS", "true").lower() != "false" else None


def caller(area: Blueprint) -> str:
    """Who sent the current request (the token's name), for the audit trail."""
    return auth.caller_from(area.current_request)
