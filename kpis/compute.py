"""Compute KPI values for a system from its approved threat model and its evaluation runs.

Incident KPIs are computed by the incidents app (which sits above this one) and
recorded through ``kpis.services.measurements_record``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.utils import timezone

from evaluations.models import EvaluationRun, ModelArtifact, RunKind, RunStatus, ScanStatus
from kpis.catalog import EVALUATION_KINDS_WITH_FRESHNESS
from threatmodel.models import System, ThreatStatus
from threatmodel.selectors import approved_versions, build_version_content

REFERENCE_EPSILON = 0.1  # in input units; [0, 1]-scaled images: about 25/255


@dataclass(frozen=True)
class KpiValue:
    """A computed KPI value with its evidence."""

    kpi: str
    value: float
    reliable: bool | None = None
    run_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def governance_values(system: System, *, today: date | None = None) -> list[KpiValue]:
    """KPIs from the system's approved threat model(s); nothing when none is approved."""
    versions = approved_versions([system.pk]).get(system.pk, [])
    if not versions:
        return []
    today = today or timezone.localdate()
    covered = total = open_risks = overdue = expired = 0
    for version in versions:
        content = build_version_content(version)
        covered_here, total_here = content.coverage
        covered, total = covered + covered_here, total + total_here
        for row in content.register:
            threat = row.threat
            if threat.status != ThreatStatus.ACCEPTED:
                continue
            if row.residual.level in ("high", "critical") and not threat.risk_acceptance_active:
                open_risks += 1
            if threat.risk_accepted_by_id and threat.risk_acceptance_expires and threat.risk_acceptance_expires < today:
                expired += 1
        overdue += sum(1 for control in content.controls if control.is_overdue)
    detail = {"versions": [f"{v.threat_model.title} v{v.number}" for v in versions]}
    values = [
        KpiValue("open_high_residual_risks", open_risks, details=detail),
        KpiValue("overdue_controls", overdue, details=detail),
        KpiValue("expired_risk_acceptances", expired, details=detail),
    ]
    if total:
        values.append(
            KpiValue("control_coverage", covered / total, details={**detail, "covered": covered, "total": total})
        )
    return values


def current_model(system: System) -> ModelArtifact | None:
    """The newest clean model version of the system."""
    return system.model_artifacts.filter(scan_status=ScanStatus.CLEAN).order_by("-version").first()


def _latest_run(system: System, kind: str, model: ModelArtifact | None = None) -> EvaluationRun | None:
    runs = EvaluationRun.objects.filter(system=system, kind=kind, status=RunStatus.SUCCEEDED)
    if model is not None:
        preferred = runs.filter(model_artifact=model).order_by("-finished_at").first()
        if preferred is not None:
            return preferred
    return runs.select_related("model_artifact").order_by("-finished_at").first()


def reference_point(metrics: dict[str, Any], reference: float = REFERENCE_EPSILON) -> int | None:
    """Index of the epsilon to report: the reference one, else the largest below it, else the smallest above."""
    epsilons = metrics.get("epsilons") or []
    positive = [(i, e) for i, e in enumerate(epsilons) if e and e > 0]
    if not positive:
        return None
    exact = [i for i, e in positive if abs(e - reference) < 1e-9]
    if exact:
        return exact[0]
    below = [(e, i) for i, e in positive if e < reference]
    return max(below)[1] if below else min((e, i) for i, e in positive)[1]


def robustness_values(run: EvaluationRun) -> list[KpiValue]:
    """Robust accuracy, its drop and the attack success rate at the reference epsilon."""
    metrics = run.metrics or {}
    index = reference_point(metrics)
    if index is None:
        return []
    robust = metrics["robust_accuracy"][index]
    clean = metrics.get("clean_accuracy")
    success = (metrics.get("attack_success_rate") or [None] * (index + 1))[index]
    details = {
        "attack": metrics.get("attack"),
        "norm": metrics.get("norm"),
        "epsilon": metrics["epsilons"][index],
        "model_version": run.model_artifact.version,
        "flags": [f.get("code") for f in run.flags or []],
    }
    values = [KpiValue("robust_accuracy", robust, run.reliable, run.pk, details)]
    if clean is not None:
        values.append(KpiValue("robust_accuracy_drop", clean - robust, run.reliable, run.pk, details))
    if success is not None:
        values.append(KpiValue("attack_success_rate", success, run.reliable, run.pk, details))
    return values


def scan_values(run: EvaluationRun) -> list[KpiValue]:
    """Critical and high findings of a model scan."""
    severities = [str((f.get("details") or {}).get("severity", "")).lower() for f in run.flags or []]
    details = {"verdict": (run.metrics or {}).get("verdict"), "model_version": run.model_artifact.version}
    return [
        KpiValue("scan_critical_findings", severities.count("critical"), None, run.pk, details),
        KpiValue("scan_high_findings", severities.count("high"), None, run.pk, details),
    ]


def adversarial_training_values(run: EvaluationRun) -> list[KpiValue]:
    """Robust accuracy gained by adversarial training."""
    metrics = run.metrics or {}
    before, after = metrics.get("robust_accuracy_before"), metrics.get("robust_accuracy_after")
    if before is None or after is None:
        return []
    return [
        KpiValue(
            "adversarial_training_gain",
            after - before,
            None,
            run.pk,
            {"eps": metrics.get("eps"), "method": metrics.get("method")},
        )
    ]


def _metric_values(run: EvaluationRun, mapping: dict[str, str]) -> list[KpiValue]:
    """KPIs read straight from named metrics when the run reports them."""
    metrics = run.metrics or {}
    return [
        KpiValue(kpi, float(metrics[key]), run.reliable, run.pk, {"metric": key})
        for kpi, key in mapping.items()
        if isinstance(metrics.get(key), (int, float))
    ]


EXTRACTION_METRICS = {
    "extraction_fidelity": "fidelity_at_reference_budget",
    "extraction_queries_to_detection": "queries_to_detection",
    "extraction_benign_fpr": "benign_false_positive_rate",
}
# Detection precision and recall need known poison: red-team backdoor simulations always have it,
# poisoning-detection runs only on datasets that mark their poison.
POISONING_METRICS = {
    "poison_detection_precision": "precision",
    "poison_detection_recall": "recall",
    "backdoor_success_after_remediation": "backdoor_success_after",
}


def evaluation_values(system: System, *, now: datetime | None = None) -> list[KpiValue]:
    """KPIs from the system's latest successful runs, plus evaluation freshness."""
    now = now or timezone.now()
    model = current_model(system)
    values: list[KpiValue] = []
    readers = {
        RunKind.ROBUSTNESS: robustness_values,
        RunKind.MODEL_SCAN: scan_values,
        RunKind.ADVERSARIAL_TRAINING: adversarial_training_values,
        RunKind.EXTRACTION: lambda run: _metric_values(run, EXTRACTION_METRICS),
        RunKind.POISONING_DETECTION: lambda run: _metric_values(run, POISONING_METRICS),
        RunKind.BACKDOOR_SIMULATION: lambda run: _metric_values(run, POISONING_METRICS),
    }
    found: dict[str, tuple[datetime, KpiValue]] = {}
    for kind, reader in readers.items():
        run = _latest_run(system, kind, model)
        for value in reader(run) if run is not None else []:
            # When two kinds report the same KPI, the more recent run wins.
            previous = found.get(value.kpi)
            if previous is None or run.finished_at >= previous[0]:
                found[value.kpi] = (run.finished_at, value)
    values.extend(value for _, value in found.values())
    for kind in EVALUATION_KINDS_WITH_FRESHNESS:
        last = (
            EvaluationRun.objects.filter(system=system, kind=kind, status=RunStatus.SUCCEEDED)
            .order_by("-finished_at")
            .values_list("finished_at", flat=True)
            .first()
        )
        if last is not None:
            values.append(
                KpiValue(
                    f"freshness_{kind}",
                    round((now - last).total_seconds() / 86400, 2),
                    details={"last_success": last.isoformat()},
                )
            )
    return values
