"""The docs state what the code does (issue 18, "friction"): when the contract's sections are
checked, what ``serving`` holds, the unit and default of ``min_delta``, the default split. Each fact
is read out of the doc that states it and compared with the code, so neither can change alone."""

from __future__ import annotations

import re
from pathlib import Path

from chalicelib import bootstrap
from chalicelib.registry.gates import primary_metric_gate
from chalicelib.registry.policy import PromotionPolicy
from chalicelib.training.settings import SplitSettings
from chalicelib.validation import sections
from chalicelib.validation.contract import EXTENSION_KEYS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _row(doc: str, first_cell: str) -> list[str]:
    """The cells of the table row of ``doc`` whose first cell is ``first_cell``."""
    for line in (DOCS / doc).read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"{doc} has no table row {first_cell!r}")


def test_the_sections_the_docs_say_are_checked_when_stored_are_the_ones_checked():
    bootstrap.contract_sections()
    checked = _row("contracts.md", "`training`, `promotion`, `monitoring`")
    assert "checked by its own stage's rules **when the contract is stored**" in checked[3]
    assert set(sections.registered()) == {"training", "promotion", "monitoring"}
    serving = _row("contracts.md", "`serving`")
    assert "checked and read by nothing" in serving[3]
    assert "serving" in EXTENSION_KEYS and "serving" not in sections.registered()


def test_the_documented_min_delta_default_is_the_codes():
    text = (DOCS / "registry.md").read_text()
    documented = re.search(r"`min_delta` \(default `([0-9.]+)`\) is an absolute difference", text)
    assert documented, "docs/registry.md no longer states min_delta's default and unit"
    assert float(documented.group(1)) == PromotionPolicy(task="classification").min_delta


def test_min_delta_is_an_absolute_difference_in_the_metrics_units_not_a_share():
    # +0.0015 on 0.5 is a 0.3% rise: a relative 0.002 (0.2%) would pass it, an absolute one does not.
    assert not primary_metric_gate("roc_auc", 0.5015, 0.5, 0.002, greater_is_better=True).passed
    assert primary_metric_gate("roc_auc", 0.912, 0.910, 0.002, greater_is_better=True).passed
    assert primary_metric_gate("rmse", 7.998, 8.0, 0.002, greater_is_better=False).passed
    # The default: a candidate equal to the champion passes this gate.
    assert primary_metric_gate(
        "roc_auc", 0.9, 0.9, PromotionPolicy(task="classification").min_delta, True
    ).passed


def test_the_documented_split_defaults_are_the_codes():
    cells = _row("contracts.md", "`split.validation`, `split.holdout`")
    validation, holdout = (float(v) for v in cells[1].split(","))
    defaults = SplitSettings()
    assert (validation, holdout) == (defaults.validation, defaults.holdout)
    trained = re.search(r"the rest, ([0-9.]+) by default, is trained on", cells[2])
    assert trained and float(trained.group(1)) == round(1 - defaults.validation - defaults.holdout, 10)
