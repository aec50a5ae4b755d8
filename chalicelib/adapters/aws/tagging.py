"""The tag set every object of the data plane carries, as S3 takes it on put and copy."""

from __future__ import annotations

from urllib.parse import urlencode


def tags(dataset: str, classification: str, stage: str) -> str:
    """The URL-encoded tag set (dataset, classification, stage) for ``Tagging=``."""
    return urlencode({"dataset": dataset, "classification": classification, "stage": stage})
