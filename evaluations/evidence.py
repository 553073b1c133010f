"""Evidence for controls: check requirements against the latest runs and record the result on the control.

The result is written through ``threatmodel.services.control_set_evidence_state``, so
residual risk and control coverage react: failing or stale evidence stops a control
from reducing risk.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.utils import timezone

from evaluations.models import EvaluationRun, EvidenceRequirement, RunStatus
from threatmodel.models import Control, EvidenceState
from threatmodel.services import control_set_evidence_state

logger = logging.getLogger(__name__)

# Per-epsilon list metrics of robustness runs, and scalar metrics of other kinds.
LIST_METRICS = ("robust_accuracy", "attack_success_rate")
METRICS: dict[str, tuple[str, ...]] = {
    "robustness": ("robust_accuracy", "attack_success_rate", "clean_accuracy", "robust_accuracy_drop"),
    "adversarial_training": ("robust_accuracy_after", "clean_accuracy_after", "robust_accuracy_gain"),
    "model_scan": ("findings", "critical_findings"),
    "extraction": ("fidelity_at_reference_budget", "queries_to_detection", "benign_false_positive_rate"),
    "poisoning_detection": ("precision", "recall", "backdoor_success_after"),
    "backdoor_simulation": (
        "attack_success_rate",
        "clean_accuracy",
        "precision",
        "recall",
        "backdoor_success_after",
        "clean_accuracy_after",
    ),
}


def metric_value(run: EvaluationRun, metric: str, epsilon: float | None) -> float | None:
    """Read a metric from a run, choosing the requested epsilon for per-epsilon metrics."""
    metrics = run.metrics or {}
    if metric == "robust_accuracy_drop":
        robust = metric_value(run, "robust_accuracy", epsilon)
        clean = metrics.get("clean_accuracy")
        return None if robust is None or clean is None else clean - robust
    if metric == "robust_accuracy_gain":
        before, after = metrics.get("robust_accuracy_before"), metrics.get("robust_accuracy_after")
        return None if before is None or after is None else after - before
    if metric == "critical_findings":
        return float(
            sum(1 for f in run.flags or [] if str((f.get("details") or {}).get("severity", "")).lower() == "critical")
        )
    value = metrics.get(metric)
    if metric in LIST_METRICS and isinstance(value, list):
        epsilons = metrics.get("epsilons") or []
        if epsilon is None or not epsilons:
            return None
        index = min(range(len(epsilons)), key=lambda i: abs(epsilons[i] - epsilon))
        if abs(epsilons[index] - epsilon) > 1e-9:
            return None
        return value[index]
    return float(value) if isinstance(value, (int, float)) else None


def evaluate(requirement: EvidenceRequirement, *, now: Any = None) -> tuple[str, str]:
    """(evidence state, detail) for a requirement from the system's latest successful run of its kind."""
    now = now or timezone.now()
    run = (
        EvaluationRun.objects.filter(system_id=requirement.system_id, kind=requirement.kind, status=RunStatus.SUCCEEDED)
        .order_by("-finished_at")
        .first()
    )
    if run is None:
        return EvidenceState.STALE, f"no successful {requirement.get_kind_display().lower()} run yet"
    age = now - run.finished_at
    if age > timedelta(days=requirement.max_age_days):
        return EvidenceState.STALE, f"run {run.pk} is {age.days} days old (limit {requirement.max_age_days})"
    if run.reliable is False:
        return EvidenceState.FAILING, f"run {run.pk} is unreliable (possible gradient masking)"
    value = metric_value(run, requirement.metric, requirement.epsilon)
    if value is None:
        at = f" at eps {requirement.epsilon:g}" if requirement.epsilon is not None else ""
        return EvidenceState.FAILING, f"run {run.pk} does not report {requirement.metric}{at}"
    holds = value >= requirement.threshold if requirement.comparator == ">=" else value <= requirement.threshold
    detail = f"run {run.pk}: {requirement.metric} = {value:.3g} ({requirement.comparator} {requirement.threshold:g})"
    return (EvidenceState.PASSING if holds else EvidenceState.FAILING), detail


def refresh_system(system_id: int, *, kind: str | None = None) -> int:
    """Re-check the system's requirements (of one run kind, or all) and update their controls."""
    requirements = EvidenceRequirement.objects.filter(system_id=system_id)
    if kind:
        requirements = requirements.filter(kind=kind)
    by_control: dict[Any, list[tuple[str, str]]] = {}
    for requirement in requirements:
        by_control.setdefault(requirement.control_uid, []).append(evaluate(requirement))
    updated = 0
    for control_uid, results in by_control.items():
        # The worst result wins: stale beats failing beats passing for what the control may claim.
        order = {EvidenceState.STALE: 0, EvidenceState.FAILING: 1, EvidenceState.PASSING: 2}
        state, detail = min(results, key=lambda r: order[r[0]])
        for control in Control.objects.filter(uid=control_uid, version__threat_model__system_id=system_id):
            control_set_evidence_state(control=control, state=state, detail=detail)
            updated += 1
    return updated
