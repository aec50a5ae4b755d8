"""Every JSON body of every route is declared, and the declaration is strict: unknown fields and
numbers out of range are a 400 naming the field (issue 14, "What to build" 6). The routes come
from app.py, so a new route is held to this without touching the test. Through the app on moto:
tests/flow/test_strict_requests.py."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import inspect

from app import app
from chalicelib.entrypoints.blueprint import version_number
from chalicelib.errors import InvalidInput
from chalicelib.http import MAX_INT_DIGITS, BadRequest, Body, parse_json_body
from tests.support import HUGE_NUMBERS, body_documents, json_routes, json_text, number_fields, raw_number

ROUTES = json_routes(app)
BODIES = sorted({body for _, _, body in ROUTES if isinstance(body, type) and issubclass(body, Body)}, key=str)


def test_every_json_route_declares_its_body():
    assert len(ROUTES) >= 9, ROUTES
    undeclared = [f"{method} {path}" for method, path, body in ROUTES if body is None]
    assert not undeclared, f"declare the body of {undeclared} (Area.route(..., body=...))"
    for _, _, body in ROUTES:
        assert callable(getattr(body, "parse", None)) and body.field_names(), body


@pytest.mark.parametrize("body", BODIES, ids=lambda b: b.__name__)
def test_every_number_a_body_takes_has_a_range(body):
    def ranged(kind: Any) -> bool:
        if isinstance(kind, inspect.Metadata):
            return ranged(kind.type)
        if isinstance(kind, inspect.UnionType):
            return all(ranged(t) for t in kind.types)
        if isinstance(kind, inspect.IntType | inspect.FloatType):
            low = kind.ge if kind.ge is not None else kind.gt
            high = kind.le if kind.le is not None else kind.lt
            return low is not None and high is not None
        if isinstance(kind, inspect.ListType):
            return ranged(kind.item_type)
        return True

    info = inspect.type_info(body)
    assert isinstance(info, inspect.StructType)
    unbounded = [f.name for f in info.fields if not ranged(f.type)]
    assert not unbounded, f"{body.__name__}: give {unbounded} a range (Meta(ge=..., le=...))"


@pytest.mark.parametrize("body", BODIES, ids=lambda b: b.__name__)
@given(data=st.data())
def test_a_declared_body_takes_what_it_declares_and_refuses_an_unknown_field_naming_it(body, data):
    doc = data.draw(body_documents(body))
    body.parse(doc)
    extra = data.draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in body.field_names()))
    with pytest.raises(BadRequest) as refused:
        body.parse({**doc, extra: data.draw(st.integers())})
    assert refused.value.field == extra and refused.value.allowed == body.field_names()
    assert all(name in str(refused.value) for name in body.field_names())


@pytest.mark.parametrize("body", [b for b in BODIES if number_fields(b)], ids=lambda b: b.__name__)
@given(data=st.data())
def test_a_number_a_field_cannot_hold_is_refused_naming_the_field(body, data):
    doc = data.draw(body_documents(body))
    field = data.draw(st.sampled_from(number_fields(body)))
    literal = data.draw(st.sampled_from([*HUGE_NUMBERS, "0", "-1", "1e308", "2.5", "true"]))
    raw = json_text({**doc, field: raw_number(literal) if literal != "true" else True})
    try:
        parsed = body.parse(parse_json_body(raw))
    except BadRequest as exc:
        assert exc.field == field, (literal, str(exc))
        assert str(exc).startswith(f"{field}: ")
    else:  # only a value within the field's range gets here
        value = getattr(parsed, field)
        assert isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e300


# --- the JSON itself -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"limit": 1' + b"0" * MAX_INT_DIGITS + b"}", "limit"),
        (b'{"records": [{"a": 1}, {"b": -' + b"9" * 5000 + b"}]}", "records[1].b"),
        (b"[1, 2, " + b"3" * 4400 + b"]", "[2]"),
    ],
)
def test_a_number_too_long_for_python_to_read_is_a_400_with_its_path(raw, field):
    with pytest.raises(BadRequest) as refused:
        parse_json_body(raw)
    assert refused.value.field == field and "digits" in str(refused.value)


def test_a_long_number_python_can_still_read_is_left_to_the_field():
    assert parse_json_body(b'{"n": 1' + b"0" * (MAX_INT_DIGITS - 1) + b"}")["n"] == 10 ** (MAX_INT_DIGITS - 1)


@given(
    doc=st.recursive(
        st.none() | st.integers() | st.text(), lambda x: st.lists(x) | st.dictionaries(st.text(), x)
    )
)
def test_any_json_document_parses_to_itself(doc):
    assert parse_json_body(json.dumps(doc).encode()) == doc


# --- path parameters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0", "-1", "1.0", "²", "٤", "1" * 5000, "100000000", " 1", "1\n", ""])
def test_a_version_in_the_path_that_is_not_a_sane_number_is_a_400(text):
    with pytest.raises(InvalidInput, match="version"):
        version_number(text)


def test_a_version_in_the_path_reads_as_its_number():
    assert [version_number(t) for t in ("1", "02", "99999999")] == [1, 2, 99_999_999]


# --- the contract (PUT /datasets/{name}/contract): checked by Contract.parse and the stages' sections ------


def _number_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [path]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return [p for key, inner in items for p in _number_paths(inner, (*path, key))]


@given(data=st.data())
def test_a_number_no_contract_field_holds_is_refused_naming_it(data):
    """A promotion.min_delta of 10**400 raised OverflowError (a 500) inside the section's check."""
    from chalicelib import bootstrap
    from chalicelib.validation import Contract, ContractError
    from chalicelib.validation.sections import check_sections
    from tests.support import contract_for

    bootstrap.contract_sections()
    doc = copy.deepcopy(contract_for().to_dict())  # its sections share dicts with tests.support.POLICY
    path = data.draw(st.sampled_from(_number_paths(doc)))
    literal = data.draw(st.sampled_from(["1" + "0" * 400, "9" * 40, "1e400", "-1e400", "-" + "9" * 39]))
    inner = doc
    for key in path[:-1]:
        inner = inner[key]
    inner[path[-1]] = raw_number(literal)
    with pytest.raises(ContractError) as refused:
        check_sections(Contract.parse(parse_json_body(json_text(doc))))
    where = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")
    assert refused.value.field == where, str(refused.value)


@pytest.mark.parametrize("version", [0, 100_000_000, 10**30])
def test_a_contract_version_that_is_not_a_sane_positive_integer_is_refused(version):
    from chalicelib.validation import Contract, ContractError
    from tests.support import contract_for

    with pytest.raises(ContractError, match="version"):
        Contract.parse({**contract_for().to_dict(), "version": version})
