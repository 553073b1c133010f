"""The CI/CD security gate: may this model version of this system ship?

``gate_decide`` checks the system's gate policy against its current KPIs and the
evidence for the given model version, stores the decision with every reason, and
audits it. ``to_junit`` and ``to_sarif`` render a decision for CI systems.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

from django.db import transaction
from django.db.models import Count, F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from evaluations.models import EvaluationRun, ModelArtifact, RunKind, RunStatus, ScanStatus
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability
from garrison.audit.services import record
from garrison.core.compiled import CompiledInsert, CompiledQuery
from kpis.catalog import AMBER, GREEN, RED
from kpis.models import Decision, GateDecision
from kpis.selectors import gate_cells, gate_policy_for
from threatmodel.models import System, Threat, ThreatModelVersion, ThreatStatus, VersionStatus
from threatmodel.risk import LEVELS, residual_risk

FRESHNESS_REQUIRED = ("freshness_robustness", "freshness_model_scan")
CRITICAL_SCORE = dict(LEVELS)["critical"]


@dataclass(frozen=True)
class Reason:
    """One check of the gate and its outcome."""

    check: str
    outcome: str  # pass | warn | fail
    message: str
    kpi: str = ""
    value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The stored form (what ``dataclasses.asdict`` gives, without its deep copies of plain values)."""
        return {
            "check": self.check,
            "outcome": self.outcome,
            "message": self.message,
            "kpi": self.kpi,
            "value": self.value,
        }


class UnknownModelVersion(LookupError):
    """The system has no model with that version."""


def _kpi_reasons(system: System, policy: Any) -> list[Reason]:
    cells = gate_cells(system)
    reasons = []
    for key in policy.required_green:
        cell = cells[key]
        name = cell.definition.name
        shown = "no measurement" if cell.value is None else f"{cell.value:.3g} {cell.definition.unit}"
        bound = f"green at {'≥' if cell.definition.direction == 'higher' else '≤'} {cell.bounds[0]:g}"
        if cell.status == GREEN:
            reasons.append(Reason(f"kpi:{key}", "pass", f"{name} is green ({shown}; {bound}).", key, cell.value))
        elif cell.status == AMBER and key in policy.allowed_amber:
            reasons.append(
                Reason(
                    f"kpi:{key}", "warn", f"{name} is amber ({shown}; {bound}). {cell.note}".strip(), key, cell.value
                )
            )
        elif cell.value is None:
            reasons.append(
                Reason(
                    f"kpi:{key}",
                    "fail",
                    f"{name} has no measurement yet; run the evaluation that produces it ({cell.definition.source}).",
                    key,
                )
            )
        else:
            reasons.append(
                Reason(
                    f"kpi:{key}",
                    "fail",
                    f"{name} is {cell.status} ({shown}; {bound}). {cell.note}".strip(),
                    key,
                    cell.value,
                )
            )
    if policy.require_fresh:
        for key in FRESHNESS_REQUIRED:
            cell = cells[key]
            if cell.value is None:
                reasons.append(
                    Reason(
                        f"fresh:{key}",
                        "fail",
                        f"No successful {key[10:].replace('_', ' ')} run yet: the evidence is missing.",
                        key,
                    )
                )
            elif cell.status == RED:
                reasons.append(
                    Reason(
                        f"fresh:{key}",
                        "fail",
                        f"The last successful {key[10:].replace('_', ' ')} "
                        f"run is {cell.value:.0f} days old (limit {cell.bounds[1]:g}): stale "
                        "evidence.",
                        key,
                        cell.value,
                    )
                )
            elif cell.status == AMBER:
                reasons.append(
                    Reason(
                        f"fresh:{key}",
                        "warn",
                        f"The last successful {key[10:].replace('_', ' ')} "
                        f"run is {cell.value:.0f} days old; refresh it soon.",
                        key,
                        cell.value,
                    )
                )
            else:
                reasons.append(
                    Reason(f"fresh:{key}", "pass", f"{cell.definition.name}: {cell.value:.0f} days.", key, cell.value)
                )
    return reasons


def _model_reasons(model: ModelArtifact, policy: Any) -> list[Reason]:
    reasons = []
    if model.scan_status != ScanStatus.CLEAN:
        reasons.append(
            Reason(
                "model:scan",
                "fail",
                f"Model v{model.version} is {model.get_scan_status_display()}"
                f"{': ' + model.scan_message if model.scan_message else ''}.",
            )
        )
    elif policy.block_critical_findings:
        critical = [
            f for f in (model.scan_report or {}).get("findings", []) if str(f.get("severity", "")).lower() == "critical"
        ]
        outcome = "fail" if critical else "pass"
        reasons.append(
            Reason("model:scan", outcome, f"Model v{model.version} scan: {len(critical)} critical finding(s).")
        )
    if policy.block_unreliable:
        # The latest successful robustness run, annotated on the model by ``_gate_models``.
        run_id = model.robustness_run_id
        if run_id is None:
            reasons.append(
                Reason("model:robustness", "fail", f"Model v{model.version} has no successful robustness evaluation.")
            )
        elif model.robustness_reliable is False:
            codes = ", ".join(sorted({f.get("code", "?") for f in model.robustness_flags or []}))
            reasons.append(
                Reason(
                    "model:robustness",
                    "fail",
                    f"The robustness result of model v{model.version} (run {run_id}) is unreliable: {codes}.",
                )
            )
        else:
            reasons.append(
                Reason(
                    "model:robustness",
                    "pass",
                    f"Model v{model.version} robustness run {run_id} passed its sanity checks.",
                )
            )
    return reasons


# What the gate reads of a model version, in the model's field order (as ``Model.from_db`` wants them).
MODEL_FIELDS = tuple(
    f.attname
    for f in ModelArtifact._meta.concrete_fields
    if f.attname in {"id", "system_id", "version", "scan_status", "scan_message", "scan_report"}
)


def _gate_models(team_ids: list[int], version: int) -> QuerySet[ModelArtifact]:
    """Model versions of the visible systems with everything the gate reads, for one query.

    Each row is a model version (only the fields the gate reads) with its system, the system's gate
    policy and KPI status row (``select_related``), the id, reliability and flags of its latest
    successful robustness run, and two counts over the system's approved threat-model versions: how
    many there are, and how many accepted threats in them have a critical inherent risk.
    """
    runs = EvaluationRun.objects.filter(
        model_artifact=OuterRef("pk"), kind=RunKind.ROBUSTNESS, status=RunStatus.SUCCEEDED
    ).order_by("-finished_at", "-pk")
    approved = (
        ThreatModelVersion.objects.filter(threat_model__system=OuterRef("system_id"), status=VersionStatus.APPROVED)
        .order_by()
        .values("threat_model__system")
        .annotate(n=Count("pk"))
        .values("n")
    )
    critical = (
        Threat.objects.filter(
            version__threat_model__system=OuterRef("system_id"),
            version__status=VersionStatus.APPROVED,
            status=ThreatStatus.ACCEPTED,
        )
        .alias(score=F("likelihood") * F("impact"))
        .filter(score__gte=CRITICAL_SCORE)
        .order_by()
        .values("version__threat_model__system")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        ModelArtifact.objects.filter(system__team_id__in=team_ids, version=version)
        .select_related("system__gate_policy", "system__kpi_status")
        .only(*MODEL_FIELDS, *(f"system__{name}" for name in SYSTEM_FIELDS))
        .annotate(
            robustness_run_id=Subquery(runs.values("pk")[:1]),
            robustness_reliable=Subquery(runs.values("reliable")[:1]),
            robustness_flags=Subquery(runs.values("flags")[:1]),
            approved_versions=Coalesce(Subquery(approved), 0),
            critical_threats=Coalesce(Subquery(critical), 0),
        )
    )


# What the gate reads of a system (the policy and the status row come with it).
SYSTEM_FIELDS = ("id", "name", "slug", "team_id", "gate_policy", "kpi_status")
_GATE_MODEL_BY_SYSTEM_ID = CompiledQuery(
    lambda team_ids, version, pk: _gate_models(team_ids, version).filter(system_id=pk)[:1],
    team_ids=list[int],
    version=int,
    pk=int,
)
_GATE_MODEL_BY_SLUG = CompiledQuery(
    lambda team_ids, version, slug: _gate_models(team_ids, version).filter(system__slug=slug)[:2],
    team_ids=list[int],
    version=int,
    slug=str,
)
_GATE_MODEL_BY_TEAM_AND_SLUG = CompiledQuery(
    lambda team_ids, version, team, slug: _gate_models(team_ids, version).filter(
        system__slug=slug, system__team__slug=team
    )[:2],
    team_ids=list[int],
    version=int,
    team=str,
    slug=str,
)


def parse_system_reference(reference: str) -> tuple[int | None, str, str]:
    """``(id, "", "")`` for a system id (id -1 when it is out of any id's range), else ``(None, team, slug)``
    for 'team/slug' or ``(None, "", slug)`` for a bare slug."""
    if reference.isdigit():
        return (int(reference) if int(reference) < 2**63 else -1), "", ""
    team, _, slug = reference.rpartition("/")
    return None, team, slug


def gate_model(*, team_ids: list[int], reference: str, version: int) -> ModelArtifact | None:
    """The model version of the system named by ``reference`` (id, 'team/slug' or a unique slug) among
    ``team_ids``, with its system and what the gate reads (:func:`_gate_models`), in one query; None
    when there is no such system, no such version or the slug is ambiguous (the caller then tells
    which, by reading the system on its own)."""
    pk, team, slug = parse_system_reference(reference)
    if not team_ids or not 1 <= version < 2**31 or pk == -1:
        return None
    if pk is not None:
        matches = _GATE_MODEL_BY_SYSTEM_ID.all(team_ids=team_ids, version=version, pk=pk)
    elif team:
        matches = _GATE_MODEL_BY_TEAM_AND_SLUG.all(team_ids=team_ids, version=version, team=team, slug=slug)
    else:
        matches = _GATE_MODEL_BY_SLUG.all(team_ids=team_ids, version=version, slug=slug)
    return matches[0] if len(matches) == 1 else None


def _risk_reasons(system: System, approved_versions: int, critical_threats: int) -> list[Reason]:
    """Unaccepted critical residual risks in the approved threat model(s).

    Only accepted threats whose inherent risk is critical can have a critical residual risk
    (controls only lower it). The gate's read counts the approved versions and those threats
    (:func:`_gate_models`); only when there are any are they loaded, with their controls, to
    work out their residual risk.
    """
    if not approved_versions:
        return [Reason("risk:threat_model", "fail", "The system has no approved threat model.")]
    if not critical_threats:
        return [Reason("risk:critical", "pass", "No unaccepted critical residual risk.")]
    candidates = (
        Threat.objects.filter(
            version__threat_model__system=system,
            version__status=VersionStatus.APPROVED,
            status=ThreatStatus.ACCEPTED,
        )
        .alias(score=F("likelihood") * F("impact"))
        .filter(score__gte=CRITICAL_SCORE)
        .order_by("version__threat_model_id", "-version__number", "stride", "title")
        .prefetch_related("controls")
    )
    open_critical = [
        threat.title
        for threat in candidates
        if residual_risk(likelihood=threat.likelihood, impact=threat.impact, controls=threat.controls.all()).level
        == "critical"
        and not threat.risk_acceptance_active
    ]
    if open_critical:
        return [
            Reason(
                "risk:critical",
                "fail",
                f"{len(open_critical)} critical residual risk(s) without an "
                f"active acceptance: {'; '.join(open_critical[:5])}.",
            )
        ]
    return [Reason("risk:critical", "pass", "No unaccepted critical residual risk.")]


def gate_decide(*, actor: Any, system: System, model_version: int, model: ModelArtifact | None = None) -> GateDecision:
    """Decide pass / warn / fail for a model version, store and audit the decision.

    ``actor=None`` is the trusted command line on the server (``manage.py gate``); every
    other caller needs the gate capability in the system's team. The checks read the
    system's precomputed KPI statuses and a few rows (each read is a consistent snapshot
    either way under PostgreSQL's read-committed isolation); the decision and its audit
    event are written together in one transaction. ``model`` is the version as :func:`gate_model`
    read it with the system (the API's one read); without it that read is made here.
    """
    if actor is not None:
        require_capability(user=actor, team_id=system.team_id, capability=Capability.GATE)
    if model is None or model.system_id != system.pk or model.version != model_version:
        model = gate_model(team_ids=[system.team_id], reference=str(system.pk), version=model_version)
    if model is None:
        raise UnknownModelVersion(f"System '{system.slug}' has no model version {model_version}.")
    policy = gate_policy_for(system)
    reasons = [*_model_reasons(model, policy), *_kpi_reasons(system, policy)]
    if policy.block_unaccepted_critical_risk:
        reasons.extend(_risk_reasons(system, model.approved_versions, model.critical_threats))
    outcomes = {r.outcome for r in reasons}
    decision = Decision.FAIL if "fail" in outcomes else Decision.WARN if "warn" in outcomes else Decision.PASS
    return _store(actor=actor, system=system, model=model, decision=decision, reasons=reasons)


_INSERT_DECISION = CompiledInsert(GateDecision)


@transaction.atomic
def _store(*, actor: Any, system: System, model: ModelArtifact, decision: str, reasons: list[Reason]) -> GateDecision:
    """Store the decision and its audit event together."""
    model_version = model.version
    stored = _INSERT_DECISION.save(
        GateDecision(
            system=system,
            model_artifact=model,
            model_version=model_version,
            decision=decision,
            reasons=[r.as_dict() for r in reasons],
            requested_by=str(actor or "manage.py gate")[:200],
        )
    )
    record(
        actor=actor,
        verb="gate.decide",
        obj=stored,
        team_id=system.team_id,
        changes={
            "decision": [None, decision],
            "model_version": [None, model_version],
            "failed_checks": [None, [r.check for r in reasons if r.outcome == "fail"]],
        },
    )
    return stored


EXIT_CODES = {Decision.PASS: 0, Decision.WARN: 1, Decision.FAIL: 2}


def to_junit(decision: GateDecision) -> str:
    """JUnit XML: one test case per check; failures fail, warnings are reported as skipped with the reason."""
    reasons = decision.reasons
    suites = ET.Element("testsuites", name="garrison-security-gate")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"{decision.system.slug} model v{decision.model_version}",
        tests=str(len(reasons)),
        failures=str(sum(r["outcome"] == "fail" for r in reasons)),
        errors="0",
        skipped=str(sum(r["outcome"] == "warn" for r in reasons)),
        timestamp=decision.created_at.isoformat(),
    )
    for reason in reasons:
        case = ET.SubElement(
            suite, "testcase", classname=f"garrison.gate.{decision.system.slug}", name=reason["check"], time="0"
        )
        if reason["outcome"] == "fail":
            ET.SubElement(case, "failure", message=reason["message"], type="GateCheckFailed").text = reason["message"]
        elif reason["outcome"] == "warn":
            ET.SubElement(case, "skipped", message=f"warning: {reason['message']}")
        ET.SubElement(case, "system-out").text = reason["message"]
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


SARIF_LEVELS = {"fail": "error", "warn": "warning", "pass": "note"}


def to_sarif(decision: GateDecision) -> str:
    """SARIF 2.1.0: one rule per check, one result per check (error, warning or note)."""
    reasons = decision.reasons
    rules, seen = [], set()
    for reason in reasons:
        if reason["check"] not in seen:
            seen.add(reason["check"])
            rules.append(
                {
                    "id": reason["check"],
                    "name": reason["check"].replace(":", "_"),
                    "shortDescription": {"text": f"Garrison gate check {reason['check']}"},
                }
            )
    artifact = f"garrison/systems/{decision.system.slug}/models/v{decision.model_version}"
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "Garrison security gate",
                        "informationUri": "https://garrison.invalid/",
                        "version": "0.1.0",
                        "rules": rules,
                    }
                },
                "results": [
                    {
                        "ruleId": reason["check"],
                        "level": SARIF_LEVELS[reason["outcome"]],
                        "message": {"text": reason["message"]},
                        "locations": [{"physicalLocation": {"artifactLocation": {"uri": artifact}}}],
                        "properties": {
                            "outcome": reason["outcome"],
                            "kpi": reason.get("kpi", ""),
                            "value": reason.get("value"),
                        },
                    }
                    for reason in reasons
                ],
                "properties": {"decision": decision.decision, "decisionId": decision.pk},
            }
        ],
    }
    return json.dumps(document, indent=2)
