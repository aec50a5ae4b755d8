"""The streaming validator: every malformed kind ends as an issue with its own code, never an
exception; valid files give statistics and a drift profile; memory does not grow with the file."""

from __future__ import annotations

import gzip
import io
import json
import zipfile

import pytest

from chalicelib.validation import Contract, validate_stream
from chalicelib.validation.issues import CODES, FATAL
from chalicelib.validation.validator import CHUNK_ROWS

HEADER = "id,x,n,flag,cat,note,ts,email,code,y"


def contract(**overrides) -> Contract:
    doc = {
        "dataset": "things",
        "row_id": "id",
        "target": "y",
        "task": "classification",
        "columns": [
            {"name": "id", "type": "string", "classification": "internal", "pattern": r"^r\d+$"},
            {
                "name": "x",
                "type": "float",
                "classification": "public",
                "nullable": True,
                "min": 0,
                "max": 100,
            },
            {"name": "n", "type": "integer", "classification": "confidential", "min": 0, "max": 10},
            {"name": "flag", "type": "boolean", "classification": "public"},
            {"name": "cat", "type": "category", "classification": "public", "allowed": ["a", "b", "c"]},
            {
                "name": "note",
                "type": "string",
                "classification": "internal",
                "nullable": True,
                "max_length": 20,
            },
            {"name": "ts", "type": "timestamp", "classification": "internal", "nullable": True},
            {"name": "email", "type": "string", "classification": "pii", "nullable": True},
            {
                "name": "code",
                "type": "string",
                "classification": "internal",
                "nullable": True,
                "unique": True,
            },
            {"name": "y", "type": "integer", "classification": "public", "allowed": [0, 1]},
        ],
    }
    doc.update(overrides)
    return Contract.parse(doc)


def row(i: int, **cells: str) -> str:
    values = {
        "id": f"r{i}",
        "x": f"{i % 100}.5",
        "n": str(i % 11),
        "flag": "true" if i % 2 else "false",
        "cat": "abc"[i % 3],
        "note": f"note {i % 7}",
        "ts": f"2026-11-{1 + i % 28:02d}T10:00:00Z",
        "email": f"user{i}@example.org",
        "code": f"c{i}",
        "y": str(i % 2),
    }
    values.update(cells)
    return ",".join(values[name] for name in HEADER.split(","))


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def good(n: int = 20) -> bytes:
    return csv_bytes(*(row(i) for i in range(n)))


def run(data: bytes, c: Contract | None = None, **kwargs):
    return validate_stream(io.BytesIO(data), c or contract(), **kwargs)


def issue(result, code: str) -> dict:
    matches = [i for i in result.report["issues"] if i["code"] == code]
    assert matches, f"no {code} in {[i['code'] for i in result.report['issues']]}"
    return matches[0]


def test_a_good_file_is_valid_with_statistics():
    result = run(good(30))
    assert result.status == "valid", result.report["issues"]
    report = result.report
    assert report["rows"] == 30 and report["columns"] == 10 and report["issues"] == []
    stats = report["column_statistics"]
    assert stats["x"]["min"] == 0.5 and stats["x"]["max"] == 29.5
    assert stats["cat"]["distinct"] == 3
    assert stats["flag"]["top"] == [{"value": "false", "count": 15}, {"value": "true", "count": 15}]


# --- every malformed kind, its own code -----------------------------------------------------------


def _gzip_bomb() -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
        gz.write(HEADER.encode() + b"\n")
        chunk = (row(1) + "\n").encode() * 10_000
        for _ in range(40):  # ~3.6 MB of text from a few KB
            gz.write(chunk)
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.csv", good())
    return buf.getvalue()


SMALL_GZIP = contract(format={"max_decompressed_bytes": 1_000_000})
MALFORMED: dict[str, tuple[bytes, Contract | None]] = {
    "EMPTY_FILE": (b"", None),
    "HEADER_ONLY": (csv_bytes(), None),
    "MISSING_COLUMN": (csv_bytes(header=HEADER.replace(",note", "")), None),
    "UNEXPECTED_COLUMN": (csv_bytes(header=HEADER + ",extra"), None),
    "DUPLICATE_COLUMN": (csv_bytes(header=HEADER.replace("note", "x")), None),
    "WRONG_DELIMITER": ((HEADER.replace(",", ";") + "\n" + row(1).replace(",", ";") + "\n").encode(), None),
    "RAGGED_ROW": (csv_bytes(row(1), row(2) + ",surplus", row(3)), None),
    "UNTERMINATED_QUOTE": (csv_bytes(row(1), row(2, note='"never closed')), None),
    "MALFORMED_QUOTING": (csv_bytes(row(1), row(2, note='"quoted"tail')), None),
    "EMBEDDED_NEWLINE": (csv_bytes(row(1), row(2, note='"two\nlines"')), None),
    "INVALID_ENCODING": (csv_bytes(row(1)) + b"r2,\xff\xfe,1,true,a,,,,,0\n", None),
    "UTF8_BOM": (b"\xef\xbb\xbf" + good(), None),
    "BINARY_CONTENT": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8, None),
    "FIELD_TOO_LARGE": (csv_bytes(row(1, note="z" * (10 * 1024 * 1024))), None),
    "NON_FINITE_NUMBER": (csv_bytes(row(1, x="nan"), row(2, x="inf"), row(3)), None),
    "OUT_OF_RANGE": (csv_bytes(row(1, x="100.5"), row(2, x="-1")), None),
    "UNKNOWN_CATEGORY": (csv_bytes(row(1, cat="d")), None),
    "NOT_ALLOWED_VALUE": (csv_bytes(row(1, y="2")), None),
    "NULL_NOT_ALLOWED": (csv_bytes(row(1, cat="")), None),
    "DUPLICATE_ROW_ID": (csv_bytes(row(1), row(2), row(3, id="r1")), None),
    "DUPLICATE_VALUE": (csv_bytes(row(1), row(2, code="c1")), None),
    "DECOMPRESSED_TOO_LARGE": (_gzip_bomb(), SMALL_GZIP),
    "CORRUPT_COMPRESSION": (gzip.compress(good(200))[:-30], None),
    "UNSUPPORTED_COMPRESSION": (_zip(), None),
    "FORMULA_INJECTION": (csv_bytes(row(1, note="=cmd|' /C calc'!A0")), None),
    "FILE_TOO_LARGE": (good(200), contract(format={"max_bytes": 1000})),
    "INVALID_INTEGER": (csv_bytes(row(1, n="3.5"), row(2, n="three")), None),
    "INVALID_FLOAT": (csv_bytes(row(1, x="12,5".replace(",", ";"))), None),
    "INVALID_BOOLEAN": (csv_bytes(row(1, flag="maybe")), None),
    "INVALID_TIMESTAMP": (csv_bytes(row(1, ts="23/11/2026")), None),
    "PATTERN_MISMATCH": (csv_bytes(row(1, id="row-1")), None),
    "VALUE_TOO_LONG": (csv_bytes(row(1, note="x" * 21)), None),
    "TOO_FEW_ROWS": (good(3), contract(limits={"min_rows": 5})),
    "TOO_MANY_ROWS": (good(6), contract(limits={"max_rows": 5})),
    "NULL_FRACTION_EXCEEDED": (
        csv_bytes(*(row(i, x="", note="", ts="") for i in range(5))),
        contract(limits={"max_null_fraction": 0.1}),
    ),
    "DUPLICATE_ROWS_EXCEEDED": (
        csv_bytes(row(1), row(1), row(2)),
        contract(row_id=None, limits={"max_duplicate_row_fraction": 0.1}),
    ),
}


def test_every_malformed_kind_has_a_case_and_there_are_at_least_25():
    assert len(MALFORMED) >= 25
    assert set(MALFORMED) <= set(CODES)


@pytest.mark.parametrize("code", sorted(MALFORMED))
def test_malformed_upload_is_invalid_with_its_own_reason_code(code):
    data, c = MALFORMED[code]
    result = run(data, c)  # never raises: bad input is data
    assert result.status == "invalid"
    found = issue(result, code)
    assert found["message"] and found["fix"] == CODES[code][1]
    json.dumps(result.report, allow_nan=False)  # the report is always writable as JSON
    if code in FATAL:
        assert result.profile is None


def test_file_past_the_size_limit_is_refused_before_reading_when_the_size_is_known():
    reads = []

    class Spy(io.BytesIO):
        def read(self, n=-1):
            reads.append(n)
            return super().read(n)

    result = validate_stream(Spy(good()), contract(format={"max_bytes": 100}), size=5_000_000_000)
    assert issue(result, "FILE_TOO_LARGE") and reads == []


def test_value_issue_names_column_row_line_and_count():
    result = run(csv_bytes(row(1), row(2, x="200"), row(3, x="300")))
    found = issue(result, "OUT_OF_RANGE")
    assert (found["column"], found["row"], found["line"], found["count"]) == ("x", 2, 3, 2)
    assert found["example"] == "200"


def test_row_numbers_stay_right_across_chunks():
    n = CHUNK_ROWS * 2 + 17
    rows = [row(i) for i in range(n)]
    rows[-5] = row(n - 5, cat="zzz")
    found = issue(run(csv_bytes(*rows)), "UNKNOWN_CATEGORY")
    assert found["row"] == n - 4 and found["line"] == n - 3


def test_values_of_confidential_and_pii_columns_are_masked_in_reports():
    result = run(csv_bytes(row(1, n="99"), row(2, email="=HYPERLINK(evil)")))
    assert issue(result, "OUT_OF_RANGE")["example"] == "***"
    injection = issue(result, "FORMULA_INJECTION")
    assert injection["column"] == "email" and injection["example"] == "***"
    text = json.dumps(result.report)
    assert "HYPERLINK" not in text  # statistics of confidential columns are kept; values are not
    assert "top" not in result.report["column_statistics"]["email"]


def test_signed_numbers_in_text_are_not_formula_injection():
    assert run(csv_bytes(row(1, note="-3.5"), row(2, note="+44"))).status == "valid"


def test_gzip_upload_is_validated_like_plain_text():
    result = run(gzip.compress(good(50)))
    assert result.status == "valid" and result.report["rows"] == 50 and result.report["compression"] == "gzip"


def test_blank_lines_are_not_rows():
    assert run(csv_bytes(row(1), "", row(2))).report["rows"] == 2


def test_options_allow_a_bom_and_multiline_fields():
    assert run(b"\xef\xbb\xbf" + good(), contract(format={"allow_bom": True})).status == "valid"
    data = csv_bytes(row(1), row(2, note='"two\nlines"'))
    assert run(data, contract(format={"allow_multiline_fields": True})).status == "valid"


def test_nullable_columns_accept_empty_values():
    assert run(csv_bytes(row(1, x="", note="", ts="", email="", code=""))).status == "valid"


def test_drift_is_reported_against_a_reference_profile():
    reference = run(good(400)).profile
    shifted = csv_bytes(*(row(i, x=f"{50 + i % 50}.5") for i in range(400)))
    result = run(shifted, reference=reference)
    drift = result.report["drift"]
    assert drift["features"]["x"]["drifted"] is True
    assert "email" not in drift["features"]  # pii: no profile, no drift
    assert "id" not in drift["features"] and "y" not in drift["features"]  # not features
    assert result.profile["columns"]["x"]["kind"] == "numeric"


def test_memory_stays_flat_when_the_file_doubles():
    import tracemalloc

    def peak(n: int) -> int:
        data = good(n)
        tracemalloc.start()
        run(data)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(60_000), peak(120_000)
    assert large < small * 1.2, (small, large)


@pytest.mark.parametrize("value", ["3.0", "1e3"])
def test_integer_column_refuses_decimal_and_exponent_forms_in_a_clean_chunk(value):
    # Every other row of the chunk is clean, so this exercises the fast path's parsing rules.
    result = run(csv_bytes(*(row(i) for i in range(50)), row(50, n=value)))
    assert issue(result, "INVALID_INTEGER")["row"] == 51
