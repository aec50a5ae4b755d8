"""The one number grammar: how every stage reads a number written as text (docs/contracts.md,
"Numbers").

Python's ``int()`` and ``float()`` accept more than CSV consumers do: ``int('1_00') == 100``,
``int('٤٢') == 42``, fullwidth digits, any Unicode space around; numpy's string conversion
inherits that. So the validator (``columns.py``), the training job's table
(``jobs/training/table.py``) and the serving schema (``serving/schema.py``) read numbers here, and
nowhere else:

* integer: ``[ \\t]*[+-]?[0-9]+[ \\t]*``: ASCII digits, an optional sign, leading zeros allowed
  (``007`` is 7), spaces and tabs around ignored. No decimal point, no exponent, no separators.
  The value is exact (a Python int of any size); one beyond what a double holds (about ±1.8e308)
  is ``TOO_LARGE``.
* float: ``[ \\t]*[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?[ \\t]*``, read as the nearest
  double. A value that rounds to infinity (``1e400``) is ``NOT_FINITE``.
* ``nan``, ``inf`` and ``infinity`` (any case, with a sign or not) are recognised in both types and
  never accepted: ``NOT_FINITE``.
* Everything else (``1_000``, ``1,000``, ``1 000``, ``0x10``, non-ASCII digits or spaces, an
  empty string) is ``NOT_A_NUMBER``.

Pure standard library, no numpy: the serving path imports it, and so does the Batch job image.
"""

from __future__ import annotations

import re
import sys
from typing import NamedTuple

INTEGER = "integer"
FLOAT = "float"
KINDS = (INTEGER, FLOAT)

NOT_A_NUMBER = "not_a_number"
NOT_FINITE = "not_finite"
TOO_LARGE = "too_large"

_INTEGER = re.compile(r"[ \t]*([+-]?)0*([0-9]+)[ \t]*")
_FLOAT = re.compile(r"[ \t]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*")
_NON_FINITE = re.compile(r"[ \t]*[+-]?(?:nan|inf|infinity)[ \t]*", re.IGNORECASE)
# A plain signed number, for the spreadsheet-formula check: "-3.5" is data, "-3+A1" is not.
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Characters a grammatical number may contain: a chunk of cells made only of these can be parsed in
# C by numpy (whose own rules are Python's) with the same result as the grammar, once non-finite
# values and int64 overflow are sent back to the exact path.
INTEGER_CHARS = re.compile(r"[^0-9+\- \t]")
FLOAT_CHARS = re.compile(r"[^0-9+\-.eE \tnNaAiIfFtTyY]")

LARGEST = sys.float_info.max
_LARGEST_INTEGER = int(LARGEST)
_LARGEST_DIGITS = len(str(_LARGEST_INTEGER))  # 309: more digits cannot be a double


class Reading(NamedTuple):
    """What a cell says: ``value`` (an exact int for integers, a float for floats) or ``problem``."""

    value: int | float | None
    problem: str | None = None


def read_number(text: str, kind: str) -> Reading:
    """Read ``text`` as an ``integer`` or a ``float`` by the grammar above."""
    if kind == INTEGER:
        return read_integer(text)
    if kind == FLOAT:
        return read_float(text)
    raise ValueError(f"{kind!r} is not a number type (one of {', '.join(KINDS)})")


def read_integer(text: str) -> Reading:
    match = _INTEGER.fullmatch(text)
    if match is None:
        return Reading(None, NOT_FINITE if _NON_FINITE.fullmatch(text) else NOT_A_NUMBER)
    sign, digits = match.groups()
    # Leading zeros are gone (the pattern skips them), so the length bounds the magnitude and int()
    # never meets Python's 4,300-digit conversion limit.
    if len(digits) > _LARGEST_DIGITS:
        return Reading(None, TOO_LARGE)
    value = int(digits)
    if value > _LARGEST_INTEGER:
        return Reading(None, TOO_LARGE)
    return Reading(-value if sign == "-" else value)


def read_float(text: str) -> Reading:
    if _FLOAT.fullmatch(text):
        value = float(text)  # exactly what the pattern allows, so float()'s extras never apply
        if value in (float("inf"), float("-inf")):
            return Reading(None, NOT_FINITE)
        return Reading(value)
    return Reading(None, NOT_FINITE if _NON_FINITE.fullmatch(text) else NOT_A_NUMBER)


def to_float(text: str, kind: str) -> float:
    """The number as a model takes it (a double); ``ValueError`` saying why when it is not one."""
    value, problem = read_number(text, kind)
    if problem is not None or value is None:
        raise ValueError(describe(text, kind, problem or NOT_A_NUMBER))
    return float(value)


def describe(text: str, kind: str, problem: str) -> str:
    """Why ``text`` is not a number of ``kind``, in words (the value clipped to 40 characters)."""
    shown = repr(text if len(text) <= 40 else text[:37] + "...")
    if problem == NOT_FINITE:
        return f"{shown} is not a finite number"
    if problem == TOO_LARGE:
        return f"{shown} is too large for a number (beyond ±{LARGEST:.3g})"
    if kind == INTEGER:
        return f"{shown} is not an integer (ASCII digits with an optional sign)"
    return f"{shown} is not a number (ASCII digits, '.', an optional sign and exponent)"


def write_number(value: float, kind: str) -> str:
    """A double as text the grammar reads back to the same value: an integral value of an
    ``integer`` column without a decimal point (``3``, not ``3.0``), anything else as ``repr``."""
    if kind == INTEGER and value.is_integer():
        return str(int(value))
    return repr(float(value))


def key(value: int | float) -> str:
    """The same text for the same value: ``03`` and ``3``, ``2.5`` and ``25e-1``, ``-0`` and ``0``
    (how unique columns and row ids of numeric type are compared)."""
    if isinstance(value, int):
        return str(value)
    return repr(value + 0.0)  # -0.0 + 0.0 == 0.0


def exceeds(value: int | float, low: float | None, high: float | None) -> bool:
    """Whether a value lies outside [low, high]. Python compares an int with a float exactly, so a
    20-digit integer is never rounded to a neighbour that happens to be in range."""
    return (low is not None and value < low) or (high is not None and value > high)
