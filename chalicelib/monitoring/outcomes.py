"""Outcomes: the true labels that arrive after a prediction, checked against the model's contract.

An outcome names the prediction it is the truth for, in one of two ways:

* ``request_id`` (32 hex characters, as ``/predict`` returns it) and ``index``, the record's position
  in that request (0 for a one-record request; a batch job's row number);
* ``row_id``: the contract's row id of the record (batch rows and records that carry one).

Its ``label`` must be a value the contract would accept in the target column: the checks are the
validator's own (``chalicelib.validation.columns.ColumnChecker``: type, allowed values, range,
pattern), so an outcome the monitor joins is a label training could have used. Over the API labels
are typed JSON (an integer target takes a JSON integer, a boolean one ``true``/``false``, a category
a string); in a CSV upload they are text, read as the validator reads uploads.

Every problem names the item (its 0-based position in the request, or the CSV data row, 1-based as
validation reports count them) and the field. Values are echoed only when the contract classifies
the column as public or internal: a confidential or pii label or row id never reaches a report.

Keys (``outcomes_key``): ``monitoring/<model>/outcomes/<YYYY-MM-DD>/<received-at>-<id>.jsonl``, the
id derived from the source, so the same source (an upload's key and version) always names the same
object and a create-only write stores it once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib import errors
from chalicelib.settings import DATASET_NAME
from chalicelib.validation.contract import BOOLEAN_TRUE, Column, Contract, FileFormat

OUTCOMES_PREFIX = "outcomes/"  # uploads: outcomes/<dataset>/<file>.csv
QUARANTINE_PREFIX = "quarantine/outcomes/"
UNROUTABLE = "_unroutable"  # never a dataset name (those start with a letter or digit)
REQUEST_ID = re.compile(r"[0-9a-fA-F]{32}")
MAX_INDEX = 10**12  # a batch job's row number: far beyond any job's rows
MAX_PROBLEMS = 100  # problems named in a 400 or report; the count covers them all
ITEM_FIELDS = ("request_id", "index", "row_id", "label")
CSV_COLUMNS = ("request_id", "index", "row_id", "label")
MAX_UPLOAD_ROWS = 100_000  # rows of one outcomes upload (larger files: split them)
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
MASK = "***"
_TIME_IN_KEY = "%Y%m%dT%H%M%S.%fZ"


class OutcomesError(errors.MlopsError):
    """Base of the outcomes' errors."""


@dataclass(frozen=True)
class Outcome:
    """One true label, received at ``received_at`` from ``source`` (``api:<request>`` or
    ``upload:<key>@<version>``), for the prediction named by (request_id, index) or row_id."""

    model: str
    label: str | int | float | bool
    received_at: datetime
    source: str
    request_id: str | None = None
    index: int = 0
    row_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "label": self.label,
            "received_at": iso(self.received_at),
            "source": self.source,
            "request_id": self.request_id,
            "index": self.index,
            "row_id": self.row_id,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Outcome:
        received = datetime.fromisoformat(str(doc["received_at"]))
        return cls(
            model=str(doc["model"]),
            label=doc["label"],
            received_at=received if received.tzinfo else received.replace(tzinfo=UTC),
            source=str(doc["source"]),
            request_id=doc.get("request_id"),
            index=int(doc.get("index", 0)),
            row_id=doc.get("row_id"),
        )


@dataclass(frozen=True)
class OutcomeProblem:
    """Why one item cannot be accepted: ``item`` is its position (API: 0-based in the list; CSV: the
    data row, 1-based), ``field`` the field at fault (None: the whole file)."""

    item: int | None
    field: str | None
    problem: str

    def to_dict(self) -> dict[str, Any]:
        return {"item": self.item, "field": self.field, "problem": self.problem}

    def __str__(self) -> str:
        where = [] if self.item is None else [f"item {self.item}"]
        if self.field is not None:
            where.append(self.field)
        return f"{' '.join(where)}: {self.problem}" if where else self.problem


class InvalidOutcomes(OutcomesError, errors.InvalidInput):
    """A request with at least one bad item: nothing of it is stored. The 400 lists the problems."""

    def __init__(self, problems: Sequence[OutcomeProblem]) -> None:
        self.problems = list(problems[:MAX_PROBLEMS])
        self.count = len(problems)
        more = f" (and {self.count - len(self.problems)} more)" if self.count > len(self.problems) else ""
        super().__init__("no outcome stored: " + "; ".join(str(p) for p in self.problems[:5]) + more)

    def details(self) -> dict[str, object]:
        return {"problems": [p.to_dict() for p in self.problems], "problem_count": self.count}


# --- times and keys ------------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    """UTC, milliseconds, ``Z``: the inference record's time format."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def outcomes_prefix(model: str, day: datetime | None = None) -> str:
    base = f"monitoring/{model}/outcomes/"
    return base if day is None else f"{base}{day.astimezone(UTC):%Y-%m-%d}/"


def outcomes_key(model: str, received_at: datetime, source: str) -> str:
    """Where outcomes received at ``received_at`` from ``source`` are stored: the same source and
    time always give the same key (create-only writes keep a retried source stored once)."""
    digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"{outcomes_prefix(model, received_at)}{received_at.astimezone(UTC).strftime(_TIME_IN_KEY)}-{digest}.jsonl"


def received_of_key(key: str) -> datetime | None:
    """The receiving time an outcomes key carries (None for a key of another form)."""
    name = key.rsplit("/", 1)[-1]
    stamp = name.split("-", 1)[0]
    try:
        return datetime.strptime(stamp, _TIME_IN_KEY).replace(tzinfo=UTC)
    except ValueError:
        return None


def days(start: datetime, end: datetime) -> Iterator[datetime]:
    """The UTC days that [start, end) touches (each day's prefix is listed once)."""
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        yield day
        day += timedelta(days=1)


def encode_lines(outcomes: Iterable[Outcome]) -> bytes:
    """JSON lines, one outcome a line (compact, UTF-8)."""
    return b"".join(
        json.dumps(o.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode() + b"\n"
        for o in outcomes
    )


def decode_lines(body: bytes) -> Iterator[Outcome]:
    for line in body.splitlines():
        if line.strip():
            yield Outcome.from_dict(json.loads(line))


def classification_of(contract: Contract) -> str:
    """What an object of outcomes is tagged with: the stricter of the target's and the row id's
    classifications (request ids are not data)."""
    from chalicelib.validation.contract import CLASSIFICATION_RANK

    columns = [contract.column(contract.target)]
    if contract.row_id:
        columns.append(contract.column(contract.row_id))
    return max((c.classification for c in columns), key=CLASSIFICATION_RANK.__getitem__)


# --- one column's values, checked as the validator checks them -------------------------------------


class _ColumnRule:
    """The validator's checks of one contract column, item by item (a problem per bad value)."""

    def __init__(self, column: Column, fmt: FileFormat) -> None:
        from chalicelib.validation.columns import ColumnChecker

        self.column = column
        self._checker = ColumnChecker(column, fmt, sample_size=1)
        self._format = fmt

    def problems(self, texts: Sequence[str]) -> dict[int, str]:
        """Position -> the problem of each text the contract would refuse ({} when all pass).

        Each distinct text is checked once (labels repeat a few classes), in chunks: a clean chunk
        costs one call; a chunk with a problem is halved until each bad text is found alone, so a
        file with k bad values among n costs about k * log2(n) small calls, not n."""
        distinct = list(dict.fromkeys(texts))
        bad: dict[str, str] = {}
        self._find(distinct, bad)
        return {n: bad[text] for n, text in enumerate(texts) if text in bad}

    def _find(self, texts: list[str], bad: dict[str, str]) -> None:
        import numpy as np

        from chalicelib.validation.issues import IssueLog

        if not texts:
            return
        log = IssueLog()
        positions = np.arange(len(texts))
        self._checker.feed(texts, positions, positions, log)
        if not log:
            return
        if len(texts) == 1:
            issue = min(log.issues.values(), key=lambda i: i.code)
            bad[texts[0]] = self._describe(issue.code, texts[0])
            return
        middle = len(texts) // 2
        self._find(texts[:middle], bad)
        self._find(texts[middle:], bad)

    def _describe(self, code: str, text: str) -> str:
        from chalicelib.validation.issues import CODES

        what, fix = CODES[code]
        shown = "" if self.column.sensitive or not text else f" ({_clip(text)!r})"
        return f"{what}{shown}; {fix}"

    def is_null(self, text: str) -> bool:
        return text in self._format.null_values


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label_value(column: Column, text: str) -> str | int | float | bool:
    """A checked label's text as the value the join compares with predictions."""
    from chalicelib.validation import numbers

    if column.type in numbers.KINDS:
        value, _ = numbers.read_number(text, column.type)
        assert value is not None  # checked
        return value
    if column.type == "boolean":
        return text.strip().lower() in BOOLEAN_TRUE
    return text


_JSON_KIND = {
    "integer": "an integer",
    "float": "a number",
    "boolean": "true or false",
    "category": "a string",
    "string": "a string",
    "timestamp": "a string (ISO 8601)",
}


def _label_text(column: Column, value: Any) -> str | None:
    """A JSON label as the text the column checks read (None: the wrong JSON type)."""
    kind = column.type
    if kind == "integer":
        return str(value) if type(value) is int else None
    if kind == "float":
        if type(value) is int:
            return str(value)
        return repr(value) if type(value) is float else None
    if kind == "boolean":
        return ("true" if value else "false") if type(value) is bool else None
    return value if type(value) is str else None


# --- the parser ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    position: int
    request_id: str | None
    index: int
    row_id: str | None
    label_text: str | None  # None: no usable label (a problem is recorded)


class OutcomeParser:
    """Checks outcomes for one model against its contract: API items (``parse_items``) and CSV
    uploads (``parse_csv``). Builds the column checks once."""

    def __init__(self, model: str, contract: Contract) -> None:
        self.model = model
        self.contract = contract
        self.target = contract.column(contract.target)
        self._label = _ColumnRule(self.target, contract.format)
        self.row_column = contract.column(contract.row_id) if contract.row_id else None
        self._row = _ColumnRule(self.row_column, contract.format) if self.row_column else None

    # --- the API ----------------------------------------------------------------------------------

    def parse_items(
        self, items: Sequence[Any], received_at: datetime, source: str
    ) -> tuple[list[Outcome], list[OutcomeProblem]]:
        """The outcomes of an API request, or every problem (then the outcomes are not to be
        stored: a request is accepted whole or not at all)."""
        problems: list[OutcomeProblem] = []
        parsed: list[_Item] = []
        for position, item in enumerate(items):
            found = self._item(position, item, problems)
            if found is not None:
                parsed.append(found)
        outcomes = self._finish(parsed, received_at, source, problems)
        problems.sort(key=lambda p: (p.item or 0, _field_order(p.field)))
        return (outcomes, problems) if not problems else ([], problems)

    def _item(self, position: int, item: Any, problems: list[OutcomeProblem]) -> _Item | None:
        def bad(field: str | None, problem: str) -> None:
            problems.append(OutcomeProblem(position, field, problem))

        if not isinstance(item, dict):  # the field at fault is the item itself
            bad(
                f"outcomes[{position}]",
                'not an object: send {"request_id", "index"?, "label"} or {"row_id", "label"}',
            )
            return None
        for name in item:
            if name not in ITEM_FIELDS:
                bad(_clip(str(name)), f"unknown field; an outcome takes: {', '.join(ITEM_FIELDS)}")
        request_id = item.get("request_id")
        row_id = item.get("row_id")
        if ("request_id" in item) == ("row_id" in item):
            bad("request_id", "send exactly one of request_id (with index) or row_id")
        index = 0
        if "request_id" in item:
            if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
                bad("request_id", "not a request id: 32 hexadecimal characters, as /predict returns it")
            if "index" in item:
                index = item["index"]
                if type(index) is not int or not 0 <= index <= MAX_INDEX:
                    bad("index", f"the record's position in the request: an integer from 0 to {MAX_INDEX:,}")
        elif "index" in item:
            bad("index", "index goes with request_id; a row_id names its record alone")
        if "row_id" in item:
            if self.row_column is None:
                bad("row_id", "the model's contract declares no row id: send request_id instead")
            elif not isinstance(row_id, str) or not row_id or self._row_is_null(row_id):
                bad("row_id", f"a non-empty string (the contract's row id column {self.row_column.name!r})")
        label_text: str | None = None
        if "label" not in item:
            bad("label", f"required: the true value of {self.target.name!r} ({_JSON_KIND[self.target.type]})")
        else:
            label_text = _label_text(self.target, item["label"])
            if label_text is None:
                bad(
                    "label",
                    f"must be {_JSON_KIND[self.target.type]} (the contract's type of {self.target.name!r})",
                )
        return _Item(
            position,
            request_id.lower() if isinstance(request_id, str) and REQUEST_ID.fullmatch(request_id) else None,
            index if type(index) is int else 0,
            row_id if isinstance(row_id, str) and row_id and not self._row_is_null(row_id) else None,
            label_text,
        )

    def _row_is_null(self, text: str) -> bool:
        return self._row is not None and self._row.is_null(text)

    def _finish(
        self, items: Sequence[_Item], received_at: datetime, source: str, problems: list[OutcomeProblem]
    ) -> list[Outcome]:
        """Run the contract's column checks on the labels (and row ids) of the items that got that
        far; the outcomes of the items without a problem."""
        checked = [i for i in items if i.label_text is not None]
        labels = self._label.problems([i.label_text or "" for i in checked])
        rows = [i for i in items if i.row_id is not None]
        row_problems = self._row.problems([i.row_id or "" for i in rows]) if self._row is not None else {}
        for n, problem in labels.items():
            problems.append(OutcomeProblem(checked[n].position, "label", problem))
        for n, problem in row_problems.items():
            problems.append(OutcomeProblem(rows[n].position, "row_id", problem))
        bad_positions = {p.item for p in problems}
        return [
            Outcome(
                model=self.model,
                label=_label_value(self.target, i.label_text or ""),
                received_at=received_at,
                source=source,
                request_id=i.request_id,
                index=i.index,
                row_id=i.row_id,
            )
            for i in checked
            if i.position not in bad_positions
        ]

    # --- CSV uploads -------------------------------------------------------------------------------

    def parse_csv(self, body: bytes, received_at: datetime, source: str) -> CsvOutcomes:
        """An outcomes upload: the good rows' outcomes, each bad row with its problems, or a problem
        of the whole file (then nothing is accepted)."""
        fatal = _file_problem(body)
        if fatal:
            return CsvOutcomes([], [], [], [OutcomeProblem(None, None, fatal)], [])
        text = body.decode("utf-8").removeprefix("\ufeff")
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            header = [cell.strip() for cell in next(reader, [])]
            raw_rows = list(reader)
        except csv.Error as exc:
            return CsvOutcomes(
                [], [], [], [OutcomeProblem(None, None, f"not a readable CSV file: {exc}")], []
            )
        fatal = self._header_problem(header)
        if fatal:
            return CsvOutcomes([], [], [], [OutcomeProblem(None, None, fatal)], header)
        if not raw_rows:
            return CsvOutcomes(
                [], [], [], [OutcomeProblem(None, None, "the file has a header but no rows")], header
            )
        if len(raw_rows) > MAX_UPLOAD_ROWS:
            problem = f"{len(raw_rows):,} rows, over the limit of {MAX_UPLOAD_ROWS:,}: split the file"
            return CsvOutcomes([], [], [], [OutcomeProblem(None, None, problem)], header)
        where = {name: header.index(name) for name in CSV_COLUMNS if name in header}
        problems: list[OutcomeProblem] = []
        items: list[_Item] = []
        for n, cells in enumerate(raw_rows, start=1):
            found = self._row_item(n, cells, header, where, problems)
            if found is not None:
                items.append(found)
        outcomes = self._finish(items, received_at, source, problems)
        problems.sort(key=lambda p: (p.item or 0, _field_order(p.field)))
        bad_rows = sorted({p.item for p in problems if p.item is not None})
        return CsvOutcomes(outcomes, problems, [(n, raw_rows[n - 1]) for n in bad_rows], [], header)

    def _header_problem(self, header: Sequence[str]) -> str | None:
        if not header or header == [""]:
            return "the file is empty: send a header (request_id or row_id, label, index) and rows"
        unknown = [n for n, name in enumerate(header, start=1) if name not in CSV_COLUMNS]
        if unknown:  # named by position: a file without a header would show a row's values here
            return (
                f"header column {unknown[0]} is not one of: {', '.join(CSV_COLUMNS)} (is the header missing?)"
            )
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            return f"column {repeated[0]!r} appears twice in the header"
        if "label" not in header:
            return "the header has no 'label' column"
        if "request_id" not in header and "row_id" not in header:
            return "the header needs a 'request_id' or a 'row_id' column"
        if "row_id" in header and self.row_column is None:
            return "the model's contract declares no row id: use request_id (and index)"
        return None

    def _row_item(
        self,
        n: int,
        cells: Sequence[str],
        header: Sequence[str],
        where: Mapping[str, int],
        problems: list[OutcomeProblem],
    ) -> _Item | None:
        if len(cells) != len(header):
            problems.append(
                OutcomeProblem(n, None, f"{len(cells)} fields where the header has {len(header)}")
            )
            return None

        def cell(name: str) -> str:
            return cells[where[name]] if name in where else ""

        request_id, row_id, index_text = cell("request_id").strip(), cell("row_id"), cell("index").strip()
        if bool(request_id) == bool(row_id):
            problems.append(OutcomeProblem(n, "request_id", "give exactly one of request_id or row_id"))
        index = 0
        if request_id:
            if not REQUEST_ID.fullmatch(request_id):
                problems.append(
                    OutcomeProblem(n, "request_id", "not a request id: 32 hexadecimal characters")
                )
            if index_text:
                if not index_text.isascii() or not index_text.isdigit() or int(index_text) > MAX_INDEX:
                    problems.append(OutcomeProblem(n, "index", f"an integer from 0 to {MAX_INDEX:,}"))
                else:
                    index = int(index_text)
        elif index_text:
            problems.append(
                OutcomeProblem(n, "index", "index goes with request_id; leave it empty with row_id")
            )
        label: str | None = cell("label")
        if label is None or self._label.is_null(label):
            problems.append(OutcomeProblem(n, "label", f"required: the true value of {self.target.name!r}"))
            label = None
        good_id = request_id.lower() if REQUEST_ID.fullmatch(request_id) else None
        return _Item(n, good_id, index, row_id or None, label)


@dataclass(frozen=True)
class CsvOutcomes:
    """What an outcomes upload holds: ``outcomes`` to store, ``problems`` of bad rows (or of the
    whole file: ``fatal``), the bad rows as read (row number, cells) for quarantine, the header."""

    outcomes: list[Outcome]
    problems: list[OutcomeProblem]
    bad_rows: list[tuple[int, list[str]]]
    fatal: list[OutcomeProblem]
    header: list[str]

    def quarantine_csv(self) -> bytes:
        """The bad rows, as uploaded, after a ``row`` column (their row in the upload)."""
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["row", *self.header])
        for n, cells in self.bad_rows:
            writer.writerow([n, *cells])
        return out.getvalue().encode()


def _field_order(field: str | None) -> int:
    return ITEM_FIELDS.index(field) if field in ITEM_FIELDS else len(ITEM_FIELDS)


def _file_problem(body: bytes) -> str | None:
    if not body.strip():
        return "the file is empty: send a header (request_id or row_id, label, index) and rows"
    if len(body) > MAX_UPLOAD_BYTES:
        return f"the file is {len(body):,} bytes, over the limit of {MAX_UPLOAD_BYTES:,}: split it"
    if b"\x00" in body:
        return "the file contains NUL bytes: it is not a text CSV"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "the bytes are not valid UTF-8: save the file as UTF-8"
    return None


# --- where uploads and their quarantine live --------------------------------------------------------------


def dataset_of_upload(key: str) -> tuple[str | None, str | None]:
    """``outcomes/<dataset>/<file>.csv`` -> (dataset, None), or (None, why the key is unusable)."""
    if not key.startswith(OUTCOMES_PREFIX):
        return None, f"the key is not under {OUTCOMES_PREFIX}"
    parts = key[len(OUTCOMES_PREFIX) :].split("/")
    if len(parts) < 2 or not parts[-1]:
        return None, f"an outcomes upload's key must look like {OUTCOMES_PREFIX}<dataset>/<file>.csv"
    if not DATASET_NAME.fullmatch(parts[0]):
        return (
            None,
            "the folder after outcomes/ is not a dataset name (1-63 lowercase letters, digits, - or _)",
        )
    if not parts[-1].lower().endswith(".csv"):
        return None, "an outcomes upload is a .csv file"
    return parts[0], None


def quarantine_prefix(dataset: str | None, upload_id: str) -> str:
    return f"{QUARANTINE_PREFIX}{dataset or UNROUTABLE}/{upload_id}/"


# --- what the stores share ---------------------------------------------------------------------------------


def stored_object(model: str, outcomes: Sequence[Outcome], source: str) -> tuple[str, bytes]:
    """The key and the body of the object that keeps ``outcomes``: one model, one receiving time."""
    if not outcomes:
        raise ValueError("no outcomes to store")
    received = {o.received_at for o in outcomes}
    if len(received) != 1 or any(o.model != model for o in outcomes):
        raise ValueError(f"one object keeps the outcomes of one model ({model!r}) received at one time")
    return outcomes_key(model, received.pop(), source), encode_lines(outcomes)


def keys_between(
    model: str, start: datetime, end: datetime, list_keys: Callable[[str], Sequence[str]]
) -> list[str]:
    """The keys of the outcomes received in [start, end), oldest first: each day's prefix listed,
    the receiving time read from the key (no object outside the range is read)."""
    found = []
    for day in days(start, end):
        for key in list_keys(outcomes_prefix(model, day)):
            moment = received_of_key(key)
            if moment is not None and start <= moment < end:
                found.append((moment, key))
    return [key for _, key in sorted(found)]
