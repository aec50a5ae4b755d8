"""What one validation may use of the ingest function: memory, local disk (/tmp) and time.

A contract says what a dataset's uploads must look like; the capacity says what the validating
function can afford, whatever the upload holds. The defaults fit ``ingest_upload`` as
``.chalice/config.json`` sizes it (1,769 MB of memory, 10,240 MB of ephemeral storage, 900 s), and
docs/contracts.md ("Capacity") derives each from those settings; a deploy test keeps them in
agreement. An upload that would need more is quarantined with ``CAPACITY_EXCEEDED`` and a message
naming the limit it passed. Tests lower the figures to reach the limits with small files.
"""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
MAX_COLUMNS = 10_000  # the most columns a contract may declare and a header may have


@dataclass(frozen=True)
class Capacity:
    # Local disk for the duplicate checks (row id, unique columns, whole rows): 14 bytes a value.
    # 8 GiB of the function's 10,240 MB of /tmp; the rest is headroom for the runtime and libraries.
    spill_bytes: int = 8 * GIB
    # The longest field read, whatever the contract's format.max_field_bytes: a line holds at most
    # twice this plus 64 KiB, and one line is read whole.
    max_field_bytes: int = 16 * MIB
    # The most columns a header may have (a contract declares at most MAX_COLUMNS).
    max_columns: int = MAX_COLUMNS
    # Row numbers are kept in 32 bits on disk.
    max_rows: int = 2**32 - 1
    # A chunk of rows in memory: at most this much text, this many cells, and per column a numpy
    # text array (4 bytes a character, as wide as its longest value) of at most array_bytes.
    chunk_bytes: int = 8 * MIB
    chunk_cells: int = 1_000_000
    array_bytes: int = 32 * MIB
    # Drift profiles: sampled values over all numeric columns (5,000 a column until they share it),
    # and counted distinct values and their characters over all text columns (1,000 a column).
    sample_values: int = 2_000_000
    category_values: int = 250_000
    category_chars: int = 16 * MIB
    # Row identities kept to compare with earlier uploads: 16 bytes a row, about 280 MiB at the
    # peak while 4 million are sorted into the upload's digest (measured). An upload with more rows
    # is validated as usual, but its rows are not compared (docs/contracts.md, "Rows across uploads").
    identity_rows: int = 4_000_000
    # Reading stops after this long (None: no limit), leaving the function's 900 s timeout room to
    # hash the rest of the upload, copy it and write the report.
    seconds: float | None = 600.0

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Capacity.{name} must not be negative, not {value}")
