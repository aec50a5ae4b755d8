"""Any S3 key works: the lineage metadata of a copy is ASCII within S3's 2 KB and gives the key back
exactly; the quarantined copy's key stays within S3's 1,024 bytes and never collides with the report
beside it. Properties over generated keys, plus the cases that used to fail."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.validation.layout import (
    MAX_KEY_BYTES,
    SourceObject,
    lineage_metadata,
    quarantine_key,
    quarantine_report_key,
    s3_write_problem,
    source_key_of,
)

UPLOAD_ID = "4c1f0e9a7b2d3e5f6a8b9c0d"
# Letters of every script, spaces, the characters URL encodings treat specially, emoji, combining
# marks, controls; no surrogates (a key is UTF-8).
CHARACTERS = st.one_of(
    st.characters(exclude_categories=("Cs",)),
    st.sampled_from(
        [" ", "+", "%", "%20", "%2B", "&", "=", "?", "#", "é", "e\u0301", "🩺", "👩‍🔬", "東京", "\u200b"]
    ),
)


@st.composite
def s3_keys(draw: st.DrawFn, prefix: str = "incoming/iris/") -> str:
    """A key of at most 1,024 UTF-8 bytes under ``prefix``: short, or padded towards the limit."""
    name = "".join(draw(st.lists(CHARACTERS, min_size=1, max_size=40)))
    form = draw(st.sampled_from([None, "NFC", "NFD", "NFKC", "NFKD"]))
    if form:
        name = unicodedata.normalize(form, name)
    if draw(st.booleans()):  # long: repeat one character up to the limit
        pad = draw(CHARACTERS) or "x"
        room = MAX_KEY_BYTES - len((prefix + name).encode())
        name += pad * max(0, draw(st.integers(0, room)) // max(1, len(pad.encode())))
    key = prefix + name
    while len(key.encode()) > MAX_KEY_BYTES:
        key = key[:-1]
    return key if len(key) > len(prefix) else prefix + "x"


@settings(max_examples=400, deadline=None)
@given(key=s3_keys(), version=st.one_of(st.none(), st.text("0123456789abcdefABCDEF._", max_size=32)))
def test_lineage_metadata_is_what_s3_accepts_and_gives_the_exact_key_back(
    key: str, version: str | None
) -> None:
    metadata = lineage_metadata(UPLOAD_ID, SourceObject("data", key, version), "f" * 64)
    assert s3_write_problem("validated/iris/x.csv", metadata) is None
    assert metadata["upload-id"] == UPLOAD_ID and metadata["sha256"] == "f" * 64
    decoded = source_key_of(metadata)
    if decoded is None:  # left out only when it could not fit S3's 2 KB
        assert len(key.encode()) > 500
    else:
        assert decoded == key


@pytest.mark.parametrize("key", ["incoming/x/é.csv", "incoming/x/e\u0301.csv", "incoming/x/a b+c%20d%.csv"])
def test_the_source_key_is_percent_encoded_utf8(key: str) -> None:
    metadata = lineage_metadata(UPLOAD_ID, SourceObject("data", key, "v1"), None)
    assert metadata["source-key"].isascii()
    assert source_key_of(metadata) == key
    assert lineage_metadata(UPLOAD_ID, SourceObject("data", "incoming/x/day1.csv", "v1"), None)[
        "source-key"
    ] == ("incoming/x/day1.csv")  # plain keys read as they are


@settings(max_examples=400, deadline=None)
@given(key=s3_keys(), dataset=st.from_regex(r"[a-z0-9_-]{1,63}", fullmatch=True))
def test_a_quarantined_copy_key_fits_s3_and_never_is_the_report_beside_it(key: str, dataset: str) -> None:
    copy_key = quarantine_key(dataset, UPLOAD_ID, key)
    folder = f"quarantine/{dataset}/{UPLOAD_ID}/"
    assert copy_key.startswith(folder) and "/" not in copy_key[len(folder) :]
    assert len(copy_key.encode()) <= MAX_KEY_BYTES
    assert copy_key != quarantine_report_key(dataset, UPLOAD_ID)
    name = key.rsplit("/", 1)[-1]
    if len((folder + name).encode()) <= MAX_KEY_BYTES and name not in ("report.json", ".", "..", ""):
        assert copy_key == folder + name  # the file name is kept whenever it fits


def test_a_long_name_is_shortened_on_a_character_boundary_keeping_its_extension() -> None:
    key = "incoming/d/" + "é" * 500 + ".csv"
    copy_key = quarantine_key("d", UPLOAD_ID, key)
    assert len(copy_key.encode()) <= MAX_KEY_BYTES and copy_key.endswith("é.csv")


@pytest.mark.parametrize("name", ["report.json", ".", ".."])
def test_names_that_would_be_the_report_or_a_path_step_get_a_prefix(name: str) -> None:
    assert quarantine_key("d", UPLOAD_ID, f"incoming/d/{name}") == f"quarantine/d/{UPLOAD_ID}/upload-{name}"


def test_s3s_limits_are_named() -> None:
    assert "1024" in (s3_write_problem("k" * 1025) or "")
    assert "ASCII" in (s3_write_problem("k", {"a": "é"}) or "")
    assert "2 KB" in (s3_write_problem("k", {"a": "x" * 2048}) or "")
    assert s3_write_problem("é" * 341, {"a": "x" * 2047}) is None
