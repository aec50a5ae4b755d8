"""Request bodies are parsed by msgspec first (issue 19: the /predict route's time), with the exact
``json.loads`` path behind it. The fast path must give exactly what the exact path gives: the same
document (types, key order, float bits), and the same refusal for duplicate keys, NaN and numbers
too long to read, which it leaves to the exact path."""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib import http
from chalicelib.http import BadRequest, parse_json_body


def _exact(raw: bytes) -> Any:
    """What the exact path alone answers (the fast decoder made to refuse everything)."""
    original = http._fast_decode

    def refuse(_: Any) -> Any:
        raise msgspec.DecodeError("fast path off")

    http._fast_decode = refuse
    try:
        return _outcome(raw)
    finally:
        http._fast_decode = original


def _outcome(raw: bytes) -> Any:
    try:
        return ("parsed", repr(parse_json_body(raw)))  # repr: 1 and 1.0 and True differ, key order shows
    except BadRequest as refused:
        return ("refused", str(refused), refused.field)


keys = st.one_of(st.text(max_size=8), st.sampled_from(["a", "b", "a:b", '"', "\\", ":", "é", "\ud800"]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@given(doc=documents, ensure_ascii=st.booleans(), indent=st.sampled_from([None, 1]))
def test_any_document_parses_as_the_exact_path_parses_it(doc, ensure_ascii, indent):
    raw = json.dumps(doc, ensure_ascii=ensure_ascii, indent=indent).encode("utf-8", "surrogatepass")
    assert _outcome(raw) == _exact(raw)


@given(doc=st.dictionaries(keys, scalars, min_size=1, max_size=5), data=st.data())
def test_a_duplicate_key_is_refused_as_the_exact_path_refuses_it(doc, data):
    key = data.draw(st.sampled_from(sorted(doc)))
    text = json.dumps(doc)
    raw = (text[:-1] + ", " + json.dumps(key) + ": 1}").encode("utf-8", "surrogatepass")
    outcome = _outcome(raw)
    assert outcome == _exact(raw)
    assert outcome[0] == "refused" and "appears twice" in outcome[1]


@settings(max_examples=300)
@given(
    mantissa=st.text("0123456789", min_size=1, max_size=25),
    fraction=st.text("0123456789", max_size=25),
    exponent=st.integers(min_value=-400, max_value=400),
    sign=st.sampled_from(["", "-"]),
)
def test_any_number_literal_reads_to_the_same_value(mantissa, fraction, exponent, sign):
    mantissa = mantissa.lstrip("0") or "0"
    literal = sign + mantissa + (f".{fraction}" if fraction else "") + f"e{exponent}"
    raw = f'{{"records": [{{"x": {literal}}}]}}'.encode()
    assert _outcome(raw) == _exact(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b"[-Infinity]",
        b'{"a": 1e400}',
        b'{"a": 1, "a": 2}',
        b'{"a": {"b": 1, "b": 1}}',
        b'{"a:b": 1, "a": 1}',
        b'"\\ud800"',
        b'{"\\ud800": 1}',
        b"[1,]",
        b'{"a": 1' + b"0" * 4400 + b"}",
        b'{"a": 1' + b"0" * 4299 + b"}",
        b" [1] ",
        b"01",
        b"-0",
        b"1.0",
        b'"\\u0000"',
        b"[1, 2",
        b'{"a" 1}',
        b"nul",
        b"\xef\xbb\xbf[1]",
    ],
    ids=lambda raw: raw[:24].decode(errors="replace"),
)
def test_edge_documents_get_the_exact_paths_answer(raw):
    assert _outcome(raw) == _exact(raw)


def test_the_fast_path_parses_a_predict_body():
    raw = json.dumps({"records": [{f"f{i}": 1.25 + i for i in range(30)}], "routing_key": "k"}).encode()
    calls = []
    original = http._fast_decode
    http._fast_decode = lambda text: calls.append(text) or original(text)
    try:
        doc = parse_json_body(raw)
    finally:
        http._fast_decode = original
    assert calls and doc["records"][0]["f29"] == 30.25 and not math.isnan(doc["records"][0]["f0"])
