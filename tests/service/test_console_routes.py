"""The console's HTTP routes, through Chalice's local gateway as deployed (reads guarded): the page and
its files answer without a token with their content types and cache headers, only allow-listed names
are served, and the data behind the pages still needs a token."""

from __future__ import annotations

import pytest
from chalice.test import Client

from chalicelib import console
from tests.support import load_app


@pytest.fixture
def http(monkeypatch):
    from mlops.localapi import install_gateway_auth_semantics

    install_gateway_auth_semantics()
    with Client(load_app(monkeypatch, "true"), stage_name="local") as client:
        yield client.http


def test_the_console_page_is_html_without_a_token_and_revalidated(http):
    answer = http.get("/console")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.headers["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    page = answer.body.decode()
    for name in ("console.js", "console.css", "chart.umd.min.js"):
        assert f'"console/assets/{name}"' in page  # relative: works under a stage's path prefix too


@pytest.mark.parametrize("name", sorted(console.ASSETS))
def test_each_allow_listed_asset_answers_with_its_content_type_and_cache_header(http, name):
    answer = http.get(f"/console/assets/{name}")
    asset = console.ASSETS[name]
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == asset.content_type
    assert answer.headers["Cache-Control"] == asset.cache_control
    assert answer.body.decode() == (console.STATIC / name).read_text(encoding="utf-8")


def test_the_vendored_chart_library_is_chart_js_4_with_its_licence(http):
    library = http.get("/console/assets/chart.umd.min.js").body.decode()
    assert library.startswith("/*!\n * Chart.js v4.")
    assert "sourceMappingURL" not in library  # the map is not shipped: no request for it
    assert "MIT License" in http.get("/console/assets/chart.js-LICENSE.md").body.decode()


@pytest.mark.parametrize(
    "path",
    [
        "/console/assets/..%2Fx",
        "/console/assets/..%2F..%2Fapp.py",
        "/console/assets/%2E%2E",
        "/console/assets/__init__.py",
        "/console/assets/index.html",  # a file beside the assets, but not on the allow-list
        "/console/assets/Console.js",
        "/console/assets/console.js.map",
    ],
)
def test_a_name_off_the_allow_list_is_404(http, path):
    answer = http.get(path)
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "application/json"
    assert b"no such console asset" in answer.body


def test_a_raw_dot_dot_path_matches_no_route_and_serves_nothing(http):
    # `..` as its own segment is no route at all: the gateway's own answer (API Gateway's is the same
    # 403 "Missing Authentication Token"); browsers and curl resolve `..` before they send anyway.
    answer = http.get("/console/assets/../x")
    assert answer.status_code == 403
    assert b"Missing Authentication Token" in answer.body


@pytest.mark.parametrize(
    "path", ["/overview", "/datasets/demo/uploads", "/uploads/0123456789abcdef01234567/report", "/models"]
)
def test_the_data_behind_the_pages_still_needs_a_token(http, path):
    assert http.get(path).status_code == 401


def test_whose_token_needs_a_token_even_where_reads_are_open(monkeypatch):
    from mlops.localapi import install_gateway_auth_semantics

    install_gateway_auth_semantics()
    with Client(load_app(monkeypatch, "false"), stage_name="local") as client:
        assert client.http.get("/session").status_code == 401
        assert client.http.get("/console").status_code == 200
