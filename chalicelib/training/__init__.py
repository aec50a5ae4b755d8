"""Training stage, Lambda side: settings read from the contract (pure Python, no scikit-learn).

The training job itself lives in ``jobs/training`` (AWS Batch image, decision 002).
"""

from chalicelib.training.settings import (
    DEFAULT_FAMILY,
    DEFAULT_METRIC,
    FAMILIES,
    METRICS,
    ModelSettings,
    RetrainSettings,
    SplitSettings,
    TrainingSettings,
    parse_training,
)

__all__ = [
    "DEFAULT_FAMILY",
    "DEFAULT_METRIC",
    "FAMILIES",
    "METRICS",
    "ModelSettings",
    "RetrainSettings",
    "SplitSettings",
    "TrainingSettings",
    "parse_training",
]

from chalicelib.validation.sections import register_section

register_section("training", TrainingSettings.from_contract)
