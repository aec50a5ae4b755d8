"""``mlops tokens``: create, list and revoke the API's bearer tokens (``chalicelib.auth``).

mlops tokens create NAME --role viewer|reporter|approver|admin [--replace] [--expires 30d|12h|90m|ISO 8601]
                   [--models a,b]
mlops tokens list
mlops tokens revoke NAME

Where: the AWS the environment points at. With ``AWS_ENDPOINT_URL`` set, or a stage other than
``local`` (``MLOPS_STAGE``), the environment is used as it is (a real account's credentials, say);
otherwise the running local cloud (``mlops up``), as ``mlops contract`` does. The stage's store is
``chalicelib.bootstrap.tokens()``: its ``tokens_path`` in SSM Parameter Store.

``create`` writes the token alone to stdout (``TOKEN=$(mlops tokens create ...)`` works) and how to
use it to stderr; it is shown this once: only its SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib import bootstrap
from chalicelib.auth import ROLES, AuthError, InvalidTokenRequest, TokenStore
from chalicelib.settings import Settings


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``tokens`` and its actions to the ``mlops`` subparsers; dispatch with ``run(args)``."""
    tokens = subparsers.add_parser("tokens", help="API tokens: create, list, revoke (stored hashed in SSM)")
    actions = tokens.add_subparsers(dest="tokens_action", required=True)
    create = actions.add_parser("create", help="create a token for NAME and print it (shown once)")
    create.add_argument("name", help="who holds it: 1-64 of letters, digits, . _ @ -")
    create.add_argument("--role", required=True, choices=ROLES, help="each role includes the ones before it")
    create.add_argument("--replace", action="store_true", help="revoke NAME's current token, if any")
    create.add_argument(
        "--created-by", default=None, help="recorded with the token (default: your login name)"
    )
    create.add_argument(
        "--expires",
        default=None,
        help="refuse the token from then on: a duration (30d, 12h, 90m) or an ISO 8601 instant "
        "(2027-01-31, 2027-01-31T08:00:00+01:00; without an offset: UTC); default: never",
    )
    create.add_argument(
        "--models",
        default=None,
        help="scope the token to these models (comma-separated): it reaches only routes that name one "
        "of them; default: every model",
    )
    actions.add_parser("list", help="every token's id, name, role, creation (never the token)")
    revoke = actions.add_parser("revoke", help="delete NAME's token (effective everywhere within 90 s)")
    revoke.add_argument("name")
    return tokens


def run(args: argparse.Namespace) -> int:
    """Run ``mlops tokens <action>``. Exit 0 done, 1 refused or failed, 2 bad name or role."""
    from botocore.exceptions import BotoCoreError, ClientError

    prog = f"mlops tokens {args.tokens_action}"
    try:
        store = _store()
        if args.tokens_action == "create":
            expires = None if args.expires is None else parse_expiry(args.expires, datetime.now(UTC))
            models = None if args.models is None else [m.strip() for m in args.models.split(",") if m.strip()]
            return _create(
                store, args.name, args.role, args.replace, args.created_by or _login(), expires, models
            )
        if args.tokens_action == "list":
            return _list(store)
        if args.tokens_action == "revoke":
            return _revoke(store, args.name)
    except InvalidTokenRequest as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except AuthError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:
        print(f"{prog}: AWS refused or could not be reached: {exc}", file=sys.stderr)
        return 1
    print(f"mlops tokens: unknown action {args.tokens_action!r}", file=sys.stderr)
    return 2


def _store() -> TokenStore:
    """The stage's tokens, after pointing the SDK at the local cloud unless the environment says where."""
    if not os.environ.get("AWS_ENDPOINT_URL") and Settings.from_env().stage == "local":
        from mlops.localcloud import connect

        connect()
    return bootstrap.tokens()


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def parse_expiry(text: str, now: datetime) -> str:
    """``--expires``: ``30d``, ``12h``, ``90m`` from ``now``, or an ISO 8601 instant (a date: its
    midnight; no offset: UTC), as an ISO 8601 UTC instant. ``InvalidTokenRequest`` otherwise."""
    match = re.fullmatch(r"([1-9][0-9]{0,5})([dhm])", text.strip())
    if match:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
        return (now + timedelta(**{unit: int(match.group(1))})).isoformat()
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidTokenRequest(
            f"--expires {text!r}: give a duration (30d, 12h, 90m) or an ISO 8601 instant (2027-01-31)"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _create(
    store: TokenStore,
    name: str,
    role: str,
    replace: bool,
    created_by: str,
    expires: str | None = None,
    models: list[str] | None = None,
) -> int:
    token, record = store.create(name, role, created_by, replace=replace, expires_at=expires, models=models)
    note = sys.stderr
    until = f", expires {record['expires_at']}" if record.get("expires_at") else ""
    until += f", models {', '.join(record['models'])} only" if record.get("models") else ""
    print(f"created a {role} token for {name} (id {record['id']}{until}):", file=note, flush=True)
    print(token, flush=True)
    print(
        "This token cannot be shown again: only its SHA-256 is stored. Keep it secret; use it as\n"
        f"  export MLOPS_TOKEN={token}\n"
        f'  curl -H "Authorization: Bearer $MLOPS_TOKEN" {api_url_in_use()}/models\n'
        f"(header `Authorization: Bearer {token}`).",
        file=note,
    )
    if replace:
        print(f"{name}'s previous token, if any, is revoked (effective within 90 s).", file=note)
    return 0


def api_url_in_use() -> str:
    """Where the API answers, for the hint ``create`` prints: ``MLOPS_API_URL`` (a deployed stage);
    else the running ``mlops up``'s (its state file); else the port ``mlops up`` would take
    (``MLOPS_API_PORT``, default 8000); a stage other than ``local`` without ``MLOPS_API_URL``: a
    placeholder, not a local address that would answer nothing."""
    import json

    from mlops.localcloud import DEFAULT_API_PORT, STATE_FILE

    if os.environ.get("MLOPS_API_URL"):
        return os.environ["MLOPS_API_URL"].rstrip("/")
    if Settings.from_env().stage != "local":
        return "$MLOPS_API_URL"
    try:
        running = json.loads(STATE_FILE.read_text()).get("api_url")
    except (OSError, ValueError, AttributeError):
        running = None
    if running:
        return str(running).rstrip("/")
    port = os.environ.get("MLOPS_API_PORT", "").strip()
    return f"http://127.0.0.1:{port if re.fullmatch(r'[0-9]{1,5}', port) else DEFAULT_API_PORT}"


def _list(store: TokenStore) -> int:
    records = store.list()
    print(f"{'id':<14}{'name':<30}{'role':<10}{'created':<27}{'expires':<27}created by")
    for record in records:
        print(
            f"{record['id']:<14}{record.get('name', '?'):<30}{record.get('role', '?'):<10}"
            f"{record.get('created_at', '?'):<27}{record.get('expires_at') or 'never':<27}"
            f"{record.get('created_by', '?')}"
            + (f"  models: {', '.join(record['models'])}" if record.get("models") else "")
        )
    if not records:
        print("(no tokens)")
    return 0


def _revoke(store: TokenStore, name: str) -> int:
    if not store.revoke(name):
        print(f"mlops tokens revoke: {name!r} has no token (see `mlops tokens list`)", file=sys.stderr)
        return 1
    print(f"revoked {name}'s token; requests with it fail within 90 s (the authorizer caches).")
    return 0
