"""What served when: a model's champion at any instant, and why it changed, from its audit ledger.

The audit ledger (``Registry.audit``) holds one entry per champion change, written in the same
transaction as the champion pointer and never rewritten: ``seq`` (1, 2, ... in the order the
changes took effect), ``at`` (when), ``action`` (``promote`` or ``rollback``), ``who``, ``reason``,
``from_version`` and ``to_version``. So the ledger is the champion's complete history: after the
entry with ``seq`` n and until the next one, the champion was entry n's ``to_version``; before the
first entry the model had none.

Time: instants are compared in UTC. An instant given with an offset (``+01:00``, ``Z``) is converted;
one given without (naive) is taken as UTC; a date alone is its midnight, UTC. The entries' ``at``
are the registry's clock when the change committed; should two entries' clocks disagree with their
order (``seq`` is the truth), a change counts from the latest ``at`` seen up to it, so the timeline
never runs backwards. Two changes in the same millisecond: the later one (by ``seq``) is the answer
at that instant.

The champion is what ``/predict`` serves; a warm serving container follows a change within the
champion pointer's cache TTL (``serving.md``), so for the seconds after a change either version may
have answered.

Pure: ``champion_at`` and ``timeline`` read entries given to them; ``champion_at_instant`` reads them
through the Registry port.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.errors import InvalidInput, RegistryError
from chalicelib.registry.ports import Registry
from chalicelib.registry.service import NotFound
from chalicelib.timeutil import parse_iso

MAX_INSTANT_CHARS = 64
# A '+' of an offset in an unencoded query string arrives as a space: "12:00:00 01:00".
_SPACED_OFFSET = re.compile(r"^(.*\d) (\d{2}(:?\d{2})?)$")
CHANGE_KEYS = ("seq", "at", "action", "who", "reason", "from_version", "to_version", "undoes")


def parse_instant(text: str | None, now: datetime) -> datetime:
    """The instant ``at`` names, in UTC: ``now`` when it is absent (None); ``InvalidInput`` naming
    ``at`` when it is not an ISO 8601 date or date-time. Naive date-times are UTC."""
    if text is None:
        return now.astimezone(UTC)
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_INSTANT_CHARS:
        raise InvalidInput(_bad_instant(text))
    value = text.strip()
    spaced = _SPACED_OFFSET.match(value)
    if spaced and "T" in value:
        value = f"{spaced.group(1)}+{spaced.group(2)}"
    if not value.isascii():  # fromisoformat would take other scripts' digits
        raise InvalidInput(_bad_instant(text))
    try:
        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # overflow: an offset past year 1 or 9999 in UTC
        raise InvalidInput(_bad_instant(text)) from None


def _bad_instant(text: object) -> str:
    shown = (
        repr(text) if not isinstance(text, str) or len(text) <= MAX_INSTANT_CHARS else repr(text[:40] + "...")
    )
    return (
        f"at: {shown} is not an ISO 8601 instant; give e.g. 2026-11-30T12:00:00Z, "
        "2026-11-30T13:00:00+01:00 (encode '+' as %2B in a URL) or 2026-11-30 (a time without an "
        "offset is UTC)"
    )


def iso(instant: datetime) -> str:
    """An instant as the API shows it: ISO 8601 in UTC, to the microsecond when it has them (so a
    ``since`` asked about again answers the same champion)."""
    return instant.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Change:
    """One champion change of the ledger, and ``effective``: when it counts from (see the docstring)."""

    entry: Mapping[str, Any]
    effective: datetime

    @property
    def version(self) -> int | None:
        found = self.entry.get("to_version")
        return None if found is None else int(found)

    def describe(self) -> dict[str, Any]:
        """The change as the API shows it: who, what, why, when."""
        return {k: self.entry.get(k) for k in CHANGE_KEYS}


def changes(ledger: Iterable[Mapping[str, Any]]) -> list[Change]:
    """The ledger's champion changes in the order they took effect (``seq``), each with the instant
    it counts from (its ``at``, or a later one if an earlier change's clock was ahead)."""
    entries = sorted(
        (e for e in ledger if "to_version" in e), key=lambda e: (int(e["seq"]), str(e.get("id", "")))
    )
    out: list[Change] = []
    latest: datetime | None = None
    for entry in entries:
        at = parse_iso(str(entry.get("at") or ""))
        if at is None:
            raise RegistryError(f"audit entry {entry.get('seq')} has no time: the ledger is damaged")
        latest = at if latest is None or at > latest else latest
        out.append(Change(entry, latest))
    return out


def champion_at(model: str, ledger: Iterable[Mapping[str, Any]], instant: datetime) -> dict[str, Any]:
    """Which version was ``model``'s champion at ``instant`` and why: the change that made it
    (``change``: who, action, reason, from and to), since when and until when (None: still is).
    Before the first champion (or for a model that never had one), ``champion`` is None and
    ``note`` says so."""
    history = changes(ledger)
    instant = instant.astimezone(UTC)
    made = None
    for index, change in enumerate(history):
        if change.effective <= instant:
            made = index
    answer: dict[str, Any] = {"model": model, "at": iso(instant)}
    if made is None:
        first = history[0] if history else None
        note = (
            f"{model} has never had a champion"
            if first is None
            else f"{model} had no champion yet: its first, v{first.version}, was made champion at "
            f"{iso(first.effective)} ({first.entry.get('action')} by {first.entry.get('who')})"
        )
        return {
            **answer,
            "champion": None,
            "since": None,
            "until": iso(first.effective) if first else None,
            "change": None,
            "note": note,
        }
    change = history[made]
    following = history[made + 1] if made + 1 < len(history) else None
    return {
        **answer,
        "champion": change.version,
        "since": iso(change.effective),
        "until": iso(following.effective) if following else None,
        "change": change.describe(),
        "note": _served(model, change, following),
    }


def _served(model: str, change: Change, following: Change | None) -> str:
    what = "no champion" if change.version is None else f"v{change.version}"
    how = f"{change.entry.get('action')} by {change.entry.get('who')}: {change.entry.get('reason')}"
    until = "still is" if following is None else f"until {iso(following.effective)}"
    return f"{model} served {what} from {iso(change.effective)} ({how}); {until}"


def timeline(model: str, ledger: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every period of the model's history, oldest first: the champion, from when until when (None:
    still), and the change that began it."""
    history = changes(ledger)
    return [
        {
            "model": model,
            "champion": change.version,
            "since": iso(change.effective),
            "until": iso(history[i + 1].effective) if i + 1 < len(history) else None,
            "change": change.describe(),
        }
        for i, change in enumerate(history)
    ]


def champion_at_instant(registry: Registry, model: str, at: str | None, now: datetime) -> dict[str, Any]:
    """``GET /models/{name}/champion?at=``: the answer of ``champion_at`` for the instant ``at``
    names (now if None), read from the registry's audit ledger. ``InvalidInput`` for a malformed
    ``at``; ``NotFound`` for a model without versions."""
    instant = parse_instant(at, now)
    if not registry.versions(model):
        raise NotFound(f"no model named {model!r}")
    return champion_at(model, registry.audit(model), instant)
