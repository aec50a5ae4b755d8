"""The web console: a small page and its static files, served by the API itself (``GET /console``).

The files live in ``static/`` beside this module and are packaged with the app (Chalice packages
``chalicelib/`` whole). Only the names in ``ASSETS`` are ever served, so a request can name no other
file (no path is built from the request). Chart.js is vendored from the npm registry by
``scripts/vendor-chartjs.sh`` (pinned version, integrity checked); nothing is fetched at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"


@dataclass(frozen=True)
class Asset:
    name: str
    content_type: str
    cache_control: str


# The page changes with the app, so browsers revalidate it; the scripts and styles may be reused for
# five minutes (a deploy is visible within that), the vendored library for a day.
_PAGE_CACHE = "no-cache"
_ASSET_CACHE = "public, max-age=300"
_LIBRARY_CACHE = "public, max-age=86400"

PAGE = Asset("index.html", "text/html; charset=utf-8", _PAGE_CACHE)
ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset("console.js", "text/javascript; charset=utf-8", _ASSET_CACHE),
        Asset("console.css", "text/css; charset=utf-8", _ASSET_CACHE),
        Asset("chart.umd.min.js", "text/javascript; charset=utf-8", _LIBRARY_CACHE),
        Asset("chart.js-LICENSE.md", "text/plain; charset=utf-8", _LIBRARY_CACHE),
    )
}

# What every answer of the console carries: scripts and styles only from the console itself, API
# calls only to the same origin, no framing, no sniffing.
SECURITY_HEADERS: dict[str, str | list[str]] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def read(asset: Asset) -> str:
    """The file's text (read once per process)."""
    return (STATIC / asset.name).read_text(encoding="utf-8")


def headers(asset: Asset) -> dict[str, str | list[str]]:
    return {"Content-Type": asset.content_type, "Cache-Control": asset.cache_control, **SECURITY_HEADERS}
