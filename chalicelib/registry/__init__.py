"""Model registry, pure core: the promotion policy (from the contract) and the gates a candidate must pass.

The AWS side (the promotion queue's handler, the registry and audit tables) wires these in; nothing
here touches AWS or imports more than numpy.
"""

from chalicelib.registry.gates import (
    PENDING_APPROVAL,
    PROMOTE,
    REJECT,
    BootstrapInterval,
    Decision,
    GateResult,
    Verdict,
    evaluate,
    floors_gate,
    guard_metrics_gate,
    latency_gate,
    paired_bootstrap,
    paired_bootstrap_ci,
    parity_gate,
    primary_metric_gate,
    schema_gate,
    significance_gate,
    size_gate,
)
from chalicelib.registry.metrics import class_indices, compute
from chalicelib.registry.policy import DEFAULT_FLOORS, MODES, PromotionPolicy, parse_promotion

__all__ = [
    "DEFAULT_FLOORS",
    "MODES",
    "PENDING_APPROVAL",
    "PROMOTE",
    "REJECT",
    "BootstrapInterval",
    "Decision",
    "GateResult",
    "PromotionPolicy",
    "Verdict",
    "class_indices",
    "compute",
    "evaluate",
    "floors_gate",
    "guard_metrics_gate",
    "latency_gate",
    "paired_bootstrap",
    "paired_bootstrap_ci",
    "parity_gate",
    "parse_promotion",
    "primary_metric_gate",
    "schema_gate",
    "significance_gate",
    "size_gate",
]

from chalicelib.validation.sections import register_section

register_section("promotion", PromotionPolicy.from_contract)
