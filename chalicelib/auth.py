"""Who may call the API: bearer tokens, stored hashed in SSM, and three roles.

Tokens
    ``mlops_`` followed by ``secrets.token_urlsafe(32)`` (256 random bits). Only the token's SHA-256
    hex digest is stored, as the *name* of an SSM parameter, ``<Settings.tokens_path>/<sha256>``
    (``/serverless-mlops/<stage>/tokens/<sha256>``); its value is JSON ``{"name", "role",
    "created_at", "created_by"}``. Nobody who can read Parameter Store (or a backup, or a log of an
    API call on it) learns a usable token, and a lookup is one ``GetParameter`` on a name derived
    from the token: no scan, no comparison of secrets (so nothing to time). A fast hash is enough
    because the input has 256 bits of entropy: there is nothing to brute-force, so a slow password
    hash (bcrypt, argon2) would only add latency to every authorization. The ``mlops_`` prefix makes
    a leaked token easy to recognise (secret scanners, grep). One token per name: creating a second
    is refused unless ``replace=True``, which revokes the old one.

Why SSM Parameter Store, SecureString
    It is serverless and costs nothing at this scale (standard parameters); a SecureString is
    encrypted with the stage's customer-managed KMS key (``alias/<prefix>-<stage>``, from
    ``infra/template.yaml``; ``SsmTokenRecords.for_settings`` in ``chalicelib.adapters.aws.tokens``
    uses it), so reading a record needs
    ``kms:Decrypt`` on that key as well as ``ssm:GetParameter`` on the path, and every read is in
    CloudTrail. The records are not secret (the token is never in them); encrypting them keeps the
    list of principals and roles to the API's role and the administrators. Creating and revoking
    (``PutParameter``, ``DeleteParameter``) are audited by CloudTrail, not by logs of ours.

Where the rules live
    This module is the pure part: roles, permissions, the token format, the lookup cache, and
    ``TokenStore``, which applies the rules (one token per name, replace, revoke, cached lookups)
    to any ``TokenRecords``: the SSM adapter (``chalicelib.adapters.aws.tokens``) or the in-memory
    one (``chalicelib.adapters.memory.tokens``). The authorizer gets its store from
    ``chalicelib.bootstrap.tokens``.

Caching and revocation
    ``lookup`` results, found and not found, are kept in-process for ``CACHE_TTL_S`` (30 s),
    keyed by the parameter name (the path and the token's hash), bounded to ``CACHE_MAX_ENTRIES``.
    The authorizer should be declared ``@app.authorizer(ttl_seconds=AUTHORIZER_TTL_S)`` (60 s): API
    Gateway then caches the returned policy per token for that long, across routes. So a revoked
    (or replaced) token keeps working for at most ``AUTHORIZER_TTL_S + CACHE_TTL_S`` (90 s) after
    ``revoke``; a new token works at once. A token created with an expiry (``expires_at``) is refused
    from that instant, from the lookup cache too, so only API Gateway's cache can outlive it: an
    expired token stops working within ``AUTHORIZER_TTL_S`` (60 s). The in-process cache keeps SSM's ``GetParameter``
    throughput quota (40/s by default) out of the request path when API Gateway's cache misses (a new
    authorizer instance, ``chalice local``, a client retrying a revoked token).

Under a flood of unknown tokens
    Each unknown token is new to every cache, so lookups that miss the cache spend a per-process
    budget (``LookupBudget``: ``LOOKUP_BURST`` (100) at once, ``LOOKUPS_PER_S`` (20) a second after
    that). Past it a token is refused (401) without a lookup, and a store that throttles is a 401 too:
    never a 5xx. Callers already looked up keep working from the caches; a token new to a process in
    the middle of a flood may get 401 until the budget refills (a fraction of a second per lookup).

Roles (``ROLES``, each includes the ones before it)
    ==========  ==================================================================================
    viewer      read models, versions, audit, uploads, contracts, runs; predict
    reporter    + send outcomes (true labels) for a model: what a label feed needs, and no more
    approver    + approve or reject a version, roll a model back, start, pause, resume or abort a rollout
    admin       + store a dataset's contract, start a retraining, revoke an upload
    ==========  ==================================================================================

    A token may be **scoped to models** (``mlops tokens create ci --role approver --models iris``):
    its policy lists only the routes that name one of them (``/models/iris/...``,
    ``/datasets/iris/...``); listings, uploads, runs and batch jobs are outside any scope (403).

    ``PERMISSIONS`` maps ``(method, Chalice route path)`` to the minimum role. ``authorize`` (the body
    of a Chalice built-in authorizer) returns a policy allowing *every* route the caller's role may
    call, not just the one being called, because API Gateway caches the policy per token and reuses
    it for other routes; a route missing from the policy is answered 403. An unknown or malformed
    token raises ``Unauthorized``, which API Gateway answers 401. The handler reads who called from
    the authorizer's context: ``caller_from(app.current_request)`` -> ``"alice (approver)"``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from chalice.app import AuthRequest, AuthResponse, AuthRoute

from chalicelib.errors import AuthError, Conflict, InvalidInput
from chalicelib.observability import logger
from chalicelib.settings import DATASET_NAME
from chalicelib.timeutil import now_iso

ROLES = ("viewer", "reporter", "approver", "admin")

# (method, route path exactly as declared in app.py) -> the least role that may call it.
PERMISSIONS: dict[tuple[str, str], str] = {
    ("GET", "/models"): "viewer",
    ("GET", "/models/{name}"): "viewer",
    ("GET", "/models/{name}/versions/{version}"): "viewer",
    ("GET", "/models/{name}/audit"): "viewer",
    ("GET", "/models/{name}/champion"): "viewer",
    ("GET", "/models/{name}/monitoring"): "viewer",
    ("GET", "/uploads/{upload_id}"): "viewer",
    ("GET", "/uploads/{upload_id}/models"): "viewer",
    ("POST", "/uploads/{upload_id}/revoke"): "admin",
    ("GET", "/datasets/{name}/contract"): "viewer",
    ("GET", "/runs/{run_id}"): "viewer",
    ("GET", "/runs"): "viewer",
    ("POST", "/models/{name}/predict"): "viewer",
    ("POST", "/models/{name}/versions/{version}/predict"): "viewer",
    # Outcomes decide performance verdicts (and so retrains): a write, but not an approver's.
    ("POST", "/models/{name}/outcomes"): "reporter",
    ("POST", "/models/{name}/versions/{version}/approve"): "approver",
    ("POST", "/models/{name}/versions/{version}/reject"): "approver",
    ("POST", "/models/{name}/rollback"): "approver",
    ("PUT", "/models/{name}/challenger"): "approver",
    ("GET", "/models/{name}/rollout"): "viewer",
    ("POST", "/models/{name}/rollout"): "approver",
    ("POST", "/models/{name}/rollout/pause"): "approver",
    ("POST", "/models/{name}/rollout/resume"): "approver",
    ("POST", "/models/{name}/rollout/abort"): "approver",
    ("PUT", "/datasets/{name}/contract"): "admin",
    ("POST", "/datasets/{name}/retrain"): "admin",
    ("POST", "/batch-jobs"): "approver",
    ("GET", "/batch-jobs/{job_id}"): "viewer",
    # The console's reads (chalicelib/entrypoints/console.py); /session: whose token this is.
    ("GET", "/session"): "viewer",
    ("GET", "/overview"): "viewer",
    ("GET", "/datasets/{name}/uploads"): "viewer",
    ("GET", "/uploads/{upload_id}/report"): "viewer",
}

TOKEN_PREFIX = "mlops_"
# token_urlsafe(32): 32 random bytes, base64url without padding = 43 characters.
_TOKEN_RE = re.compile(r"mlops_[A-Za-z0-9_-]{43}")
_BEARER_RE = re.compile(r"bearer\s+(\S+)", re.IGNORECASE)
NAME_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")
# What an answer never echoes (``redact_tokens``): a token, or 20 or more characters of one (a
# message clipping it shows its first 34). Random base64url text that long has an uppercase letter
# (all but 3 in 100,000 times); without one, only a whole token's length is masked, so a dataset
# named ``mlops_something`` (lowercase by rule) still reads as it is. And any Bearer credential.
_TOKEN_LIKE = re.compile(r"mlops_[A-Za-z0-9_-]{20,}")
_BEARER_CREDENTIAL = re.compile(r"(bearer\s+)\S+", re.IGNORECASE)
REDACTED = TOKEN_PREFIX + "***"
ID_LENGTH = 12  # hex characters of the hash shown by ``list`` (enough to tell tokens apart)

CACHE_TTL_S = 30.0
CACHE_MAX_ENTRIES = 1024
# Lookups that miss the cache, per process: a token bucket (``LookupBudget``).
LOOKUPS_PER_S = 20.0  # half of SSM's default GetParameter quota (40/s per account and region)
LOOKUP_BURST = 100
AUTHORIZER_TTL_S = 60  # declare the authorizer with @app.authorizer(ttl_seconds=AUTHORIZER_TTL_S)


class InvalidTokenRequest(AuthError, InvalidInput):
    """A name or role that is not allowed."""


class TokenExists(AuthError, Conflict):
    """The name already has a token (create with ``replace=True`` to replace it)."""


class TokenLookupUnavailable(AuthError):
    """A token could not be looked up now: this process spent its lookup budget, or the store is
    throttling (``chalicelib.adapters.aws.tokens``). The authorizer refuses the token (401)."""


class Unauthorized(AuthError):
    """Raised by the authorizer: API Gateway answers 401 to an authorizer failing with "Unauthorized"."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def role_rank(role: str) -> int:
    try:
        return ROLES.index(role)
    except ValueError:
        raise InvalidTokenRequest(f"unknown role {role!r}: use one of {', '.join(ROLES)}") from None


def role_allows(role: str, minimum: str) -> bool:
    """True if ``role`` includes ``minimum`` (``approver`` includes ``viewer``)."""
    return role_rank(role) >= role_rank(minimum)


def allowed_routes(role: str) -> list[tuple[str, str]]:
    """The ``(method, path)`` entries of ``PERMISSIONS`` that ``role`` may call, in table order."""
    return [route for route, minimum in PERMISSIONS.items() if role_allows(role, minimum)]


SCOPED_PARAMETER = "{name}"  # the path parameter that names a model (or its dataset)


def _arn_path(path: str) -> str:
    # API Gateway matches a policy's resources against the request's concrete path
    # (.../GET/models/iris), so a route's {parameters} become the wildcard *.
    return re.sub(r"\{[^}/]+\}", "*", path)


def auth_routes(role: str, models: tuple[str, ...] | None = None) -> list[AuthRoute]:
    """The policy for ``role``: one ``AuthRoute`` per path, with the methods the role may call there.

    ``models`` (a scoped token): only the routes that name a model (``{name}``: the model, or the
    dataset it is named after), once per model; a route that does not name one (listings, uploads,
    runs, batch jobs) is outside any scope."""
    methods: dict[str, list[str]] = {}
    for method, path in allowed_routes(role):
        if models is None:
            methods.setdefault(_arn_path(path), []).append(method)
        elif SCOPED_PARAMETER in path:
            for model in models:
                methods.setdefault(_arn_path(path.replace(SCOPED_PARAMETER, model)), []).append(method)
    return [AuthRoute(path, verbs) for path, verbs in methods.items()]


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    expires_at: datetime | None = None  # None: never
    models: tuple[str, ...] | None = None  # None: every model; else only routes naming one of these

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    @property
    def caller(self) -> str:
        return f"{self.name} ({self.role})"

    def may(self, method: str, path: str) -> bool:
        minimum = PERMISSIONS.get((method.upper(), path))
        return minimum is not None and role_allows(self.role, minimum)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def redact_tokens(value: Any) -> Any:
    """``value`` (text, or JSON: dicts, lists) with every token-like string masked as ``mlops_***``:
    what the API answers, whatever a client put in a path, a body, a header or an object's key, never
    carries a token back (into a terminal's scrollback, a log, a screenshot)."""
    if isinstance(value, str):
        masked = _TOKEN_LIKE.sub(_mask, value)
        return _BEARER_CREDENTIAL.sub(lambda m: m.group(1) + "***", masked)
    if isinstance(value, dict):
        return {redact_tokens(k): redact_tokens(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tokens(v) for v in value]
    return value


def _mask(match: re.Match[str]) -> str:
    text = match.group(0)
    body = text[len(TOKEN_PREFIX) :]
    return REDACTED if len(body) >= 43 or body.lower() != body else text


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_authorization(header: str | None) -> str | None:
    """The token in an Authorization header: ``Bearer <token>`` (any case) or the bare token.

    Anything else (another scheme, an empty header, a string that is not shaped like one of our
    tokens) is None, so a malformed header never costs an SSM call.
    """
    if not header:
        return None
    value = header.strip()
    bearer = _BEARER_RE.fullmatch(value)
    if bearer:
        value = bearer.group(1)
    return value if _TOKEN_RE.fullmatch(value) else None


class TokenCache:
    """Lookup results (a ``Principal`` or None) by key for ``ttl_s`` seconds; thread-safe, bounded.

    ``clock`` is injectable (tests advance it instead of sleeping). When full, the oldest entry goes.
    """

    def __init__(
        self,
        ttl_s: float = CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = CACHE_MAX_ENTRIES,
    ) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, Principal | None]:
        """``(True, value)`` if ``key`` was stored less than ``ttl_s`` ago, else ``(False, None)``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            expires, value = entry
            if self._clock() >= expires:
                del self._entries[key]
                return False, None
            return True, value

    def put(self, key: str, value: Principal | None) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (self._clock() + self.ttl_s, value)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def discard(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class LookupBudget:
    """A token bucket: ``burst`` lookups at once, refilled at ``rate`` a second; thread-safe.

    Every lookup that misses the cache takes one. A flood of unknown tokens (each one new, so the
    cache cannot help) spends the bucket, and from then on costs no call to the store: the store's
    quota (SSM: 40 ``GetParameter`` a second per account by default) stays for the callers it knows.
    """

    def __init__(
        self,
        rate: float = LOOKUPS_PER_S,
        burst: int = LOOKUP_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def refill(self) -> None:
        with self._lock:
            self._tokens, self._last = float(self.burst), self._clock()

    def take(self) -> bool:
        """Spend one lookup if one is left (True), else False."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


_cache = TokenCache()
_budget = LookupBudget()


def reset_cache() -> None:
    """Forget every cached lookup of this process and refill its lookup budget (tests)."""
    _cache.clear()
    _budget.refill()


class TokenRecords(Protocol):
    """Where token records live, each named by its token's SHA-256 hex digest (the port).

    A record is stored as JSON text; a value that does not parse is the store's to refuse, not the
    adapter's, so ``get`` and ``items`` return the text as stored.
    """

    path: str  # where the records are (an SSM path): lookups are cached under ``<path>/<digest>``

    def put(self, digest: str, record: dict[str, Any]) -> bool:
        """Store the record (create-only): False if a record with that digest exists."""
        ...

    def get(self, digest: str) -> str | None:
        """The stored text of the record, or None if there is none."""
        ...

    def items(self) -> list[tuple[str, str]]:
        """``(digest, stored text)`` of every record."""
        ...

    def delete(self, digest: str) -> bool:
        """Delete the record: False if there was none."""
        ...


class TokenStore:
    """API tokens: one per name, stored by hash in ``records``, looked up through ``cache``.

    ``cache``: the lookup cache (default: this process's, emptied by ``reset_cache``).
    """

    def __init__(
        self,
        records: TokenRecords,
        cache: TokenCache | None = None,
        budget: LookupBudget | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.records = records
        self._cache = _cache if cache is None else cache
        self._budget = _budget if budget is None else budget
        self._clock = clock

    def _cache_key(self, digest: str) -> str:
        return f"{self.records.path.rstrip('/')}/{digest}"

    def create(
        self,
        name: str,
        role: str,
        created_by: str,
        *,
        replace: bool = False,
        expires_at: str | None = None,
        models: list[str] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """A new token for ``name``: ``(token, record)``. The token is returned once, never stored.

        ``expires_at`` (ISO 8601, a future instant; None: never): from then on the token is refused.
        ``models`` (None: every model): the token reaches only routes that name one of them.
        Raises ``InvalidTokenRequest`` for a bad name, role or expiry and ``TokenExists`` if ``name``
        has a token and ``replace`` is false; with ``replace`` the old token is revoked once the new
        one is stored.
        """
        if not NAME_RE.fullmatch(name):
            raise InvalidTokenRequest(
                f"invalid token name {name!r}: use 1 to 64 characters among letters, digits and . _ @ -"
            )
        role_rank(role)
        expiry = _expiry(expires_at, self._clock())
        if models is not None and (not models or not all(DATASET_NAME.fullmatch(str(m)) for m in models)):
            raise InvalidTokenRequest(
                f"models {models!r}: name one or more models, each 1-63 lowercase letters, digits, '-' or '_'"
            )
        existing = self._find(name)
        if existing is not None and not replace:
            raise TokenExists(
                f"{name!r} already has a token (id {existing[0][:ID_LENGTH]}): revoke it first "
                "or create with replace (--replace)"
            )
        token = new_token()
        digest = hash_token(token)
        record: dict[str, Any] = {
            "name": name,
            "role": role,
            "created_at": now_iso("seconds"),
            "created_by": created_by,
        }
        if expiry is not None:
            record["expires_at"] = expiry.isoformat()
        if models is not None:
            record["models"] = list(dict.fromkeys(models))
        if not self.records.put(digest, record):  # pragma: no cover - 256 random bits
            raise TokenExists("a token with this hash exists: create again")
        self._cache.discard(self._cache_key(digest))
        if existing is not None:
            self._delete(existing[0])
        return token, {"id": digest[:ID_LENGTH], **record}

    def list(self) -> list[dict[str, Any]]:
        """Every token's record with ``id`` (the first 12 hex characters of its hash), by name."""
        return sorted(
            ({"id": digest[:ID_LENGTH], **record} for digest, record in self._records()),
            key=lambda record: str(record.get("name", "")),
        )

    def revoke(self, name: str) -> bool:
        """Delete ``name``'s token. False if it had none. Takes effect everywhere within the TTLs."""
        existing = self._find(name)
        if existing is None:
            return False
        self._delete(existing[0])
        return True

    def lookup(self, token: str) -> Principal | None:
        """Who holds ``token`` (None if nobody): one read of the records, or none within the cache TTL.

        A read spends one of the process's lookup budget; with none left, or when the store is
        throttling, ``TokenLookupUnavailable`` (the authorizer answers 401; nothing is cached). Any
        other failure to read (access denied: a deployment's mistake) is raised: a 500 that shows it.
        """
        digest = hash_token(token)
        hit, cached = self._cache.get(self._cache_key(digest))
        if hit:
            return None if cached is not None and cached.expired(self._clock()) else cached
        if not self._budget.take():
            raise TokenLookupUnavailable("token lookup budget spent: too many unknown tokens at once")
        value = self.records.get(digest)
        principal = None if value is None else _principal(value)
        self._cache.put(self._cache_key(digest), principal)
        return None if principal is not None and principal.expired(self._clock()) else principal

    def _records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for digest, value in self.records.items():
            try:
                record = json.loads(value)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield digest, record

    def _find(self, name: str) -> tuple[str, dict[str, Any]] | None:
        return next(((d, r) for d, r in self._records() if r.get("name") == name), None)

    def _delete(self, digest: str) -> None:
        self.records.delete(digest)
        self._cache.discard(self._cache_key(digest))


def _expiry(expires_at: str | None, now: datetime) -> datetime | None:
    """A token's expiry from ``create``: a future instant (a time without an offset is UTC)."""
    if expires_at is None:
        return None
    try:
        moment = datetime.fromisoformat(expires_at)
    except (TypeError, ValueError):
        raise InvalidTokenRequest(f"expires_at {expires_at!r} is not an ISO 8601 instant") from None
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    if moment <= now:
        raise InvalidTokenRequest(
            f"expires_at {moment.isoformat()} is not in the future (now {now.isoformat()})"
        )
    return moment


def _principal(value: str) -> Principal | None:
    try:
        record = json.loads(value)
        expires = record.get("expires_at")
        scope = record.get("models")
        principal = Principal(
            name=str(record["name"]),
            role=str(record["role"]),
            expires_at=datetime.fromisoformat(expires) if expires else None,
            models=None if scope is None else tuple(str(m) for m in scope),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        logger.warning("api token record unreadable: refusing it")
        return None
    if principal.role not in ROLES:
        logger.warning("api token record has an unknown role: refusing it", extra={"role": principal.role})
        return None
    return principal


def authorize(auth_request: AuthRequest, store: TokenStore) -> AuthResponse:
    """The body of the API's built-in authorizer: a policy for the token's role, or ``Unauthorized``.

    The policy allows every route the role may call (API Gateway reuses it across routes for
    ``AUTHORIZER_TTL_S``); the context carries ``name`` and ``role`` to the handlers.
    """
    token = parse_authorization(auth_request.token)
    if token is None:
        logger.info("authorization refused", extra={"reason": "missing or malformed token"})
        raise Unauthorized()
    try:
        principal = store.lookup(token)
    except TokenLookupUnavailable as exc:
        logger.warning("authorization refused", extra={"reason": str(exc)})
        raise Unauthorized() from None
    if principal is None:
        logger.info("authorization refused", extra={"reason": "unknown or revoked token"})
        raise Unauthorized()
    logger.info("authorized", extra={"principal": principal.name, "role": principal.role})
    routes: list[str | AuthRoute] = [*auth_routes(principal.role, principal.models)]
    context = {"name": principal.name, "role": principal.role}
    if principal.models is not None:
        context["models"] = ",".join(principal.models)
    return AuthResponse(routes=routes, principal_id=principal.name, context=context)


def caller_from(request: Any) -> str:
    """``"alice (approver)"`` from the authorizer's context of a Chalice request; with IAM
    authorization, ``"arn:aws:iam::123456789012:user/alice (iam)"``; else ``"anonymous"``."""
    context = getattr(request, "context", None) or {}
    authorizer = context.get("authorizer") or {}
    name, role = authorizer.get("name"), authorizer.get("role")
    if name and role:
        return Principal(str(name), str(role)).caller
    identity = context.get("identity") or {}
    if identity.get("userArn"):  # MLOPS_AUTH=iam: API Gateway checked the caller's SigV4 signature
        return f"{identity['userArn']} (iam)"
    return str(name) if name else "anonymous"
