"""A stable train / validation / holdout split: a row's split depends on its key alone.

The key is the row id when the contract has one, else the row's content. Each key is hashed
(sha256) to a fraction u in [0, 1); fixed ranges of u make the split:

    [0, holdout)                    -> holdout
    [holdout, holdout + validation) -> validation
    [holdout + validation, 1)       -> train

So a row lands in the same split whatever other rows exist, in whatever order, in this run or any
later one: a holdout row is never trained on by any run, and growing the data never moves a row.
Identical rows (same content, no row id) land together, so a duplicate cannot leak a holdout row
into train. Changing the fractions does move rows; keep them stable for a dataset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

TRAIN, VALIDATION, HOLDOUT = "train", "validation", "holdout"
SPLITS = (TRAIN, VALIDATION, HOLDOUT)
# Versioned so that a future change of scheme is a deliberate, visible re-split.
_SALT = b"serverless-mlops/split/v1\x00"
_SCALE = float(2**64)


def split_fraction(key: str) -> float:
    """The key's place in [0, 1): the first 8 bytes of sha256, big-endian, over 2**64."""
    digest = hashlib.sha256(_SALT + key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def assign_split(row_keys: Iterable[str], validation: float, holdout: float) -> np.ndarray:
    """The split of each row key: an array of "train", "validation" or "holdout"."""
    if validation < 0.0 or holdout < 0.0 or validation + holdout >= 1.0:
        raise ValueError(
            f"split fractions validation={validation}, holdout={holdout} must be >= 0 and sum below 1"
        )
    u = np.fromiter((split_fraction(k) for k in row_keys), dtype=np.float64)
    out = np.full(u.shape, TRAIN, dtype=object)
    out[u < holdout + validation] = VALIDATION
    out[u < holdout] = HOLDOUT
    return out
