"""The KPI catalog, as code: what each KPI means, how it is computed, and default thresholds.

Thresholds are (green, amber) bounds per criticality tier 1-4 (tier 1 strictest). For a
"higher is better" KPI a value >= green is green, >= amber is amber, else red; for
"lower is better" a value <= green is green, <= amber is amber, else red. Teams can
override the bounds per tier and per system.
"""

from __future__ import annotations

from dataclasses import dataclass

HIGHER, LOWER = "higher", "lower"

EVALUATION_KINDS_WITH_FRESHNESS = ("robustness", "model_scan", "extraction", "poisoning_detection")


@dataclass(frozen=True)
class KpiDefinition:
    """One KPI."""

    key: str
    name: str
    definition: str
    formula: str
    unit: str
    direction: str
    source: str
    thresholds: dict[int, tuple[float, float]]  # tier -> (green bound, amber bound)
    group: str

    def bounds(self, tier: int) -> tuple[float, float]:
        """The default (green, amber) bounds for a tier."""
        return self.thresholds[tier]


def _same(green: float, amber: float) -> dict[int, tuple[float, float]]:
    return {tier: (green, amber) for tier in (1, 2, 3, 4)}


def _tiers(*bounds: tuple[float, float]) -> dict[int, tuple[float, float]]:
    return dict(zip((1, 2, 3, 4), bounds, strict=True))


KPIS: tuple[KpiDefinition, ...] = (
    KpiDefinition(
        "robust_accuracy",
        "Robust accuracy",
        "Accuracy under the strongest white-box attack run at the reference epsilon.",
        "correct adversarial predictions / samples",
        "ratio",
        HIGHER,
        "robustness run",
        _tiers((0.7, 0.5), (0.6, 0.4), (0.5, 0.3), (0.4, 0.2)),
        "robustness",
    ),
    KpiDefinition(
        "robust_accuracy_drop",
        "Robust-accuracy drop",
        "How much accuracy the attack removes at the reference epsilon.",
        "clean accuracy - robust accuracy",
        "ratio",
        LOWER,
        "robustness run",
        _tiers((0.2, 0.4), (0.25, 0.45), (0.3, 0.5), (0.4, 0.6)),
        "robustness",
    ),
    KpiDefinition(
        "attack_success_rate",
        "Attack success rate",
        "Share of originally correct samples the attack flips at the reference epsilon.",
        "flipped / originally correct",
        "ratio",
        LOWER,
        "robustness run",
        _tiers((0.2, 0.4), (0.3, 0.5), (0.4, 0.6), (0.5, 0.7)),
        "robustness",
    ),
    KpiDefinition(
        "adversarial_training_gain",
        "Adversarial-training gain",
        "Robust accuracy gained by the last adversarial training, measured with a stronger attack than trained with.",
        "robust accuracy after - before",
        "ratio",
        HIGHER,
        "adversarial-training run",
        _same(0.2, 0.05),
        "robustness",
    ),
    KpiDefinition(
        "extraction_fidelity",
        "Extraction fidelity",
        "Top-1 agreement between a surrogate stolen at the reference query budget (defenses on) and the model.",
        "agreeing predictions / held-out inputs",
        "ratio",
        LOWER,
        "extraction run",
        _tiers((0.5, 0.7), (0.6, 0.8), (0.7, 0.85), (0.8, 0.9)),
        "extraction",
    ),
    KpiDefinition(
        "extraction_queries_to_detection",
        "Queries to detection",
        "Queries a synthetic extraction attacker makes before the query monitor flags it.",
        "median over attackers",
        "queries",
        LOWER,
        "extraction run",
        _tiers((100, 200), (150, 300), (200, 500), (300, 1000)),
        "extraction",
    ),
    KpiDefinition(
        "extraction_benign_fpr",
        "Benign false-positive rate",
        "Share of benign client streams the extraction monitor flags.",
        "flagged benign streams / benign streams",
        "ratio",
        LOWER,
        "extraction run",
        _same(0.01, 0.05),
        "extraction",
    ),
    KpiDefinition(
        "poison_detection_precision",
        "Poison-detection precision",
        "Of the training records flagged as poison, the share that really were (red-team runs with known poison).",
        "true flagged / flagged",
        "ratio",
        HIGHER,
        "poisoning-detection run",
        _same(0.8, 0.6),
        "poisoning",
    ),
    KpiDefinition(
        "poison_detection_recall",
        "Poison-detection recall",
        "Of the planted poison, the share the detector flagged.",
        "true flagged / poisoned",
        "ratio",
        HIGHER,
        "poisoning-detection run",
        _same(0.95, 0.8),
        "poisoning",
    ),
    KpiDefinition(
        "backdoor_success_after_remediation",
        "Backdoor success after remediation",
        "Attack success rate of the trigger after flagged records were removed and the model retrained.",
        "triggered inputs classified as target / triggered inputs",
        "ratio",
        LOWER,
        "poisoning remediation",
        _same(0.05, 0.2),
        "poisoning",
    ),
    KpiDefinition(
        "scan_critical_findings",
        "Critical scan findings",
        "Critical findings in the latest scan of the current model version.",
        "count",
        "findings",
        LOWER,
        "model-scan run",
        _same(0, 0),
        "scan",
    ),
    KpiDefinition(
        "scan_high_findings",
        "High scan findings",
        "High-severity findings in the latest scan of the current model version.",
        "count",
        "findings",
        LOWER,
        "model-scan run",
        _same(0, 1),
        "scan",
    ),
    KpiDefinition(
        "control_coverage",
        "Control coverage",
        "High and critical threats with at least one verified control whose evidence holds.",
        "covered / high+critical accepted threats",
        "ratio",
        HIGHER,
        "approved threat model",
        _tiers((0.9, 0.7), (0.8, 0.6), (0.7, 0.5), (0.5, 0.3)),
        "governance",
    ),
    KpiDefinition(
        "open_high_residual_risks",
        "Open high/critical residual risks",
        "Accepted threats whose residual risk is high or critical and not covered by an active risk acceptance.",
        "count",
        "threats",
        LOWER,
        "approved threat model",
        _tiers((0, 2), (1, 3), (2, 5), (3, 8)),
        "governance",
    ),
    KpiDefinition(
        "overdue_controls",
        "Overdue controls",
        "Controls past their due date and not implemented.",
        "count",
        "controls",
        LOWER,
        "approved threat model",
        _tiers((0, 1), (0, 2), (1, 3), (2, 5)),
        "governance",
    ),
    KpiDefinition(
        "expired_risk_acceptances",
        "Expired risk acceptances",
        "Risk acceptances past their expiry date on live threats.",
        "count",
        "acceptances",
        LOWER,
        "approved threat model",
        _same(0, 1),
        "governance",
    ),
    *(
        KpiDefinition(
            f"freshness_{kind}",
            f"Freshness: {kind.replace('_', ' ')}",
            f"Days since the last successful {kind.replace('_', ' ')} run of the system.",
            "now - last success",
            "days",
            LOWER,
            f"{kind.replace('_', ' ')} runs",
            thresholds,
            "freshness",
        )
        for kind, thresholds in (
            ("robustness", _tiers((7, 14), (14, 30), (30, 60), (60, 120))),
            ("model_scan", _tiers((7, 14), (14, 30), (30, 60), (60, 120))),
            ("extraction", _tiers((30, 60), (60, 90), (90, 180), (180, 365))),
            ("poisoning_detection", _tiers((14, 30), (30, 60), (60, 120), (120, 240))),
        )
    ),
    KpiDefinition(
        "open_incidents",
        "Open incidents",
        "Incidents affecting the system that are not closed.",
        "count",
        "incidents",
        LOWER,
        "incidents",
        _tiers((0, 1), (0, 1), (1, 2), (1, 3)),
        "incidents",
    ),
    KpiDefinition(
        "mean_time_to_remediate",
        "Mean time to remediate",
        "Average time from detection to closure of the system's incidents closed in the last 180 days.",
        "mean(closed - detected)",
        "hours",
        LOWER,
        "incidents",
        _tiers((72, 168), (120, 240), (168, 336), (336, 720)),
        "incidents",
    ),
)

BY_KEY: dict[str, KpiDefinition] = {kpi.key: kpi for kpi in KPIS}
GROUPS = ("robustness", "extraction", "poisoning", "scan", "governance", "freshness", "incidents")


def kpi(key: str) -> KpiDefinition:
    """The definition of a KPI; KeyError names the known keys."""
    try:
        return BY_KEY[key]
    except KeyError as exc:
        raise KeyError(f"Unknown KPI '{key}'. Known KPIs: {', '.join(sorted(BY_KEY))}.") from exc


GREEN, AMBER, RED, UNKNOWN = "green", "amber", "red", "unknown"
STATUS_ORDER = {RED: 0, AMBER: 1, UNKNOWN: 2, GREEN: 3}


def classify(definition: KpiDefinition, value: float | None, bounds: tuple[float, float]) -> str:
    """green / amber / red for a value, or unknown when there is none."""
    if value is None:
        return UNKNOWN
    green, amber = bounds
    if definition.direction == HIGHER:
        return GREEN if value >= green else AMBER if value >= amber else RED
    return GREEN if value <= green else AMBER if value <= amber else RED


def bounds_in_order(definition: KpiDefinition, green: float, amber: float) -> bool:
    """Whether the amber bound lies on the worse side of the green bound."""
    return amber <= green if definition.direction == HIGHER else amber >= green
