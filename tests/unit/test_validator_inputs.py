"""Inputs that once crashed the validator or got the wrong verdict (issue 13): header names with
spaces around them, big integers, numbers Python reads but CSV consumers do not, integer ids that
differ only in spelling, UTF-16/32 files, and where an encoding problem is."""

from __future__ import annotations

import codecs
import gzip
import io

import pytest

from chalicelib.validation import Contract, validate_stream
from chalicelib.validation import validator as validator_module


def contract(count: dict | None = None, **overrides) -> Contract:
    doc = {
        "dataset": "readings",
        "row_id": "reading_id",
        "target": "temp_c",
        "task": "regression",
        "columns": [
            {"name": "reading_id", "type": "integer", "classification": "internal"},
            {"name": "site", "type": "string", "classification": "public"},
            {"name": "count", "type": "integer", "classification": "public", **(count or {})},
            {"name": "temp_c", "type": "float", "classification": "public"},
        ],
    }
    doc.update(overrides)
    return Contract.parse(doc)


HEADER = "reading_id,site,count,temp_c"


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def row(i: int, **cells: str) -> str:
    values = {"reading_id": str(i), "site": f"s{i % 3}", "count": str(i % 7), "temp_c": f"{i % 30}.5"}
    values.update(cells)
    return ",".join(values[name] for name in HEADER.split(","))


def run(data: bytes, c: Contract | None = None):
    return validate_stream(io.BytesIO(data), c or contract())


def codes(result) -> dict[tuple[str, str | None], dict]:
    return {(i["code"], i["column"]): i for i in result.report["issues"]}


# --- header names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "reading_id,site ,temp_c,count",
        " reading_id , site,count ,  temp_c",
        "reading_id,\tsite\t,count,temp_c",
        "reading_id,site\u00a0,count,temp_c",  # a no-break space from a spreadsheet export
    ],
)
def test_header_names_with_spaces_around_them_are_trimmed_and_matched(header):
    names = [h.strip() for h in header.split(",")]
    lines = []
    for i in range(1, 6):
        values = {"reading_id": str(i), "site": "a", "count": "1", "temp_c": "2.5"}
        lines.append(",".join(values[n] for n in names))
    result = run(csv_bytes(*lines, header=header))
    assert result.status == "valid", result.report["issues"]
    assert result.report["column_statistics"]["site"]["count"] == 5


def test_header_names_with_spaces_are_trimmed_in_the_multi_line_path_too():
    # A ragged row sends the chunk through the record-by-record path.
    result = run(csv_bytes(row(1), row(2) + ",extra", row(3), header="reading_id,site ,count,temp_c"))
    assert set(codes(result)) == {("RAGGED_ROW", None)}


def test_header_names_are_case_sensitive():
    result = run(csv_bytes(row(1), header="reading_id,Site,count,temp_c"))
    assert set(codes(result)) == {("MISSING_COLUMN", "site"), ("UNEXPECTED_COLUMN", "Site")}


# --- big integers ----------------------------------------------------------------------------------


def test_a_20_digit_integer_in_an_integer_column_without_a_maximum_is_valid():
    result = run(csv_bytes(row(1), row(2, count="12345678901234567890"), row(3)))
    assert result.status == "valid", result.report["issues"]
    assert result.report["column_statistics"]["count"]["max"] == 12345678901234567890.0


def test_an_out_of_range_big_integer_is_out_of_range_and_nothing_else():
    result = run(csv_bytes(row(1), row(2, count="12345678901234567890")), contract({"max": 100}))
    assert set(codes(result)) == {("OUT_OF_RANGE", "count")}
    assert codes(result)[("OUT_OF_RANGE", "count")]["row"] == 2


@pytest.mark.parametrize("clean_chunk", [True, False], ids=["clean chunk", "chunk with a null"])
def test_integers_are_compared_exactly_against_the_range(clean_chunk):
    # 2**53 + 1 rounds to 2**53 as a float: compared as floats it would pass a maximum of 2**53.
    limit = 2**53
    doc = contract({"max": limit, "min": -limit}).to_dict()
    doc["columns"][1]["nullable"] = True
    c = Contract.parse(doc)
    extra = [] if clean_chunk else [row(9, site="")]  # a null sends the chunk down the exact path
    inside = run(csv_bytes(row(1, count=str(limit)), row(2, count=str(-limit)), *extra), c)
    assert inside.status == "valid", inside.report["issues"]
    outside = run(csv_bytes(row(1, count=str(limit + 1)), row(2, count=str(-limit - 1)), *extra), c)
    found = codes(outside)
    assert set(found) == {("OUT_OF_RANGE", "count")} and found[("OUT_OF_RANGE", "count")]["count"] == 2


@pytest.mark.parametrize("digits", [309, 400, 5000])
def test_an_integer_too_large_for_any_number_is_out_of_range_not_a_crash(digits):
    result = run(csv_bytes(row(1), row(2, count="9" * digits)))
    assert set(codes(result)) == {("OUT_OF_RANGE", "count")}


# --- numbers Python reads but CSV consumers do not -----------------------------------------------

# Arabic-Indic, fullwidth and Devanagari digits; no-break, figure and em spaces.
NOT_NUMBERS = ["1_00", "٤٢", "\uff13", "1\u00a0", "\u20073", "१०", "1_000.5", "\uff11.\uff15", "3\u2003"]


@pytest.mark.parametrize("value", NOT_NUMBERS)
@pytest.mark.parametrize("clean_chunk", [True, False], ids=["clean chunk", "chunk with other problems"])
def test_underscores_and_non_ascii_digits_or_spaces_are_not_integers(value, clean_chunk):
    others = [row(i) for i in range(3, 40)] if clean_chunk else [row(3, count="x")]
    result = run(csv_bytes(row(1), row(2, count=value), *others))
    assert codes(result)[("INVALID_INTEGER", "count")]["row"] == 2


@pytest.mark.parametrize("value", NOT_NUMBERS)
@pytest.mark.parametrize("clean_chunk", [True, False], ids=["clean chunk", "chunk with other problems"])
def test_underscores_and_non_ascii_digits_or_spaces_are_not_floats(value, clean_chunk):
    others = [row(i) for i in range(3, 40)] if clean_chunk else [row(3, temp_c="x")]
    result = run(csv_bytes(row(1), row(2, temp_c=value), *others))
    assert codes(result)[("INVALID_FLOAT", "temp_c")]["row"] == 2


# --- integer ids by value --------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["03", "+3", " 3", "3 ", "0003"])
def test_integer_row_ids_are_compared_by_value(spelling):
    result = run(csv_bytes(row(1), row(3), row(5, reading_id=spelling)))
    found = codes(result)
    assert set(found) == {("DUPLICATE_ROW_ID", "reading_id")}
    assert found[("DUPLICATE_ROW_ID", "reading_id")]["row"] == 3


def test_unique_integer_columns_are_compared_by_value():
    c = contract({"unique": True})
    result = run(csv_bytes(row(1, count="7"), row(2, count="-0"), row(3, count="007"), row(4, count="0")), c)
    assert codes(result)[("DUPLICATE_VALUE", "count")]["count"] == 2


def test_unique_float_columns_are_compared_by_value():
    doc = contract().to_dict()
    doc["columns"][3]["unique"] = True
    result = run(
        csv_bytes(row(1, temp_c="2.5"), row(2, temp_c="2.50"), row(3, temp_c="25e-1")), Contract.parse(doc)
    )
    assert codes(result)[("DUPLICATE_VALUE", "temp_c")]["count"] == 2


# --- encodings -------------------------------------------------------------------------------------

TEXT = "\n".join([HEADER, *(row(i) for i in range(1, 30))]) + "\n"
WIDE = {
    "UTF-16 (little-endian) with a byte-order mark": codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"),
    "UTF-16 (big-endian) with a byte-order mark": codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"),
    "UTF-16 (little-endian) without a byte-order mark": TEXT.encode("utf-16-le"),
    "UTF-16 (big-endian) without a byte-order mark": TEXT.encode("utf-16-be"),
    "UTF-32 (little-endian) with a byte-order mark": codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"),
    "UTF-32 (big-endian) with a byte-order mark": codecs.BOM_UTF32_BE + TEXT.encode("utf-32-be"),
    "UTF-32 (little-endian) without a byte-order mark": TEXT.encode("utf-32-le"),
    "UTF-32 (big-endian) without a byte-order mark": TEXT.encode("utf-32-be"),
}


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("name", sorted(WIDE))
def test_utf16_and_utf32_files_get_their_own_code_naming_the_encoding(name, compressed):
    data = gzip.compress(WIDE[name]) if compressed else WIDE[name]
    result = run(data)
    found = codes(result)
    assert set(found) == {("UNSUPPORTED_ENCODING", None)}, found
    assert name in found[("UNSUPPORTED_ENCODING", None)]["message"]


def test_utf16_without_ascii_is_still_named():
    text = "名前,場所\n" + "".join(f"東京{i},大阪{i}\n" for i in range(20))
    found = codes(run(codecs.BOM_UTF16_LE + text.encode("utf-16-le")))
    assert "UTF-16 (little-endian)" in found[("UNSUPPORTED_ENCODING", None)]["message"]


def test_binary_files_are_still_binary():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
    assert set(codes(run(png))) == {("BINARY_CONTENT", None)}


@pytest.mark.parametrize("bad_row", [1, 2, 150, 80_001])
def test_invalid_encoding_names_the_row_and_line_of_the_bad_byte(bad_row):
    lines = [row(i).encode() for i in range(1, 80_010)]
    lines[bad_row - 1] = row(bad_row, site="caf\xe9").encode("latin-1")
    result = run(HEADER.encode() + b"\n" + b"\n".join(lines) + b"\n")
    found = codes(result)
    assert set(found) == {("INVALID_ENCODING", None)}
    issue = found[("INVALID_ENCODING", None)]
    assert (issue["row"], issue["line"]) == (bad_row, bad_row + 1)
    assert f"row {bad_row}" in issue["message"]


def test_invalid_encoding_in_the_header_names_row_0():
    found = codes(run(b"reading_id,s\xefte,count,temp_c\n" + row(1).encode() + b"\n"))
    assert found[("INVALID_ENCODING", None)]["row"] == 0


def test_invalid_encoding_after_multi_line_rows_names_the_row_not_the_line(monkeypatch):
    monkeypatch.setattr(validator_module, "CHUNK_ROWS", 3)
    c = Contract.parse({**contract().to_dict(), "format": {"allow_multiline_fields": True}})
    data = csv_bytes(row(1, site='"a\nb"'), row(2, site='"c\nd"'), row(3), row(4), row(5, site="x"))
    data = data.replace(b"\n5,x,", b"\n5,x\xff,")
    issue = codes(run(data, c))[("INVALID_ENCODING", None)]
    assert (issue["row"], issue["line"]) == (5, 8)


def test_a_truncated_character_at_the_end_of_a_gzip_upload_names_its_row():
    data = csv_bytes(row(1), row(2)) + "é".encode()[:1]
    issue = codes(run(gzip.compress(data)))[("INVALID_ENCODING", None)]
    assert issue["row"] == 3


def test_a_timestamp_that_is_before_year_1_in_utc_is_valid_not_a_crash():
    # 0001-01-01T00:00:00+01:00 is 23:00 on 31 December of year 0 in UTC: no datetime can show it.
    doc = contract().to_dict()
    doc["columns"].append({"name": "seen_at", "type": "timestamp", "classification": "public"})
    result = run(
        csv_bytes(row(1) + ",0001-01-01T00:00:00+01:00", row(2) + ",2026-11-30", header=HEADER + ",seen_at"),
        Contract.parse(doc),
    )
    assert result.status == "valid", result.report["issues"]
    assert result.report["column_statistics"]["seen_at"]["min"] is None


@pytest.mark.parametrize("script", ["Cyrillic", "accented Latin", "CJK"])
def test_utf8_text_with_a_stray_nul_byte_is_binary_not_utf16(script):
    # Two-byte UTF-8 (Cyrillic, Latin-1 letters) read as UTF-16 looks like printable text too.
    letters = {"Cyrillic": "имягородцена", "accented Latin": "éàüøçñåôîœ", "CJK": "東京大阪名前場所"}[script]
    text = "".join(letters[(i * 7) % len(letters)] + (",\n"[i % 2] if i % 5 == 0 else "") for i in range(400))
    data = text.encode()
    found = codes(run(data[:31] + b"\x00" + data[31:]))
    assert set(found) == {("BINARY_CONTENT", None)}
