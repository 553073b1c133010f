"""Writes to KPIs: measurements (the time series), thresholds, gate policies and gate decisions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from garrison.accounts.models import Team
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability
from garrison.audit.services import diff, record, snapshot
from kpis.catalog import BY_KEY, bounds_in_order, kpi
from kpis.compute import KpiValue, evaluation_values, governance_values
from kpis.models import CurrentValue, GatePolicy, KpiThreshold, Measurement
from kpis.status import statuses_refresh, statuses_refresh_tier
from threatmodel.models import System

# Without new evidence a value is re-recorded at most daily, so trends stay continuous but small.
REPEAT_AFTER = timedelta(hours=23)


@transaction.atomic
def measurements_record(*, system: System, values: Iterable[KpiValue], trigger: str) -> list[Measurement]:
    """Append the values to the system's time series and make them current.

    A value identical to the current one is skipped unless it comes from a new run or the
    current one is older than a day. Measurements are observations, not governed edits,
    so they leave no audit row; the events that caused them do. The system's status row
    (the portfolio and the gate read it) is recomputed in the same transaction.
    """
    now = timezone.now()
    values = list(values)
    current = {
        c.kpi: c
        for c in CurrentValue.objects.select_for_update().filter(system=system, kpi__in=[v.kpi for v in values])
    }
    recorded = []
    for value in values:
        kpi(value.kpi)  # unknown KPI names fail loudly
        existing = current.get(value.kpi)
        if (
            existing is not None
            and existing.value == value.value
            and existing.reliable == value.reliable
            and existing.measurement.run_id == value.run_id
            and now - existing.measured_at < REPEAT_AFTER
        ):
            continue
        measurement = Measurement.objects.create(
            system=system,
            kpi=value.kpi,
            value=value.value,
            measured_at=now,
            trigger=trigger[:40],
            run_id=value.run_id,
            reliable=value.reliable,
            details=value.details,
        )
        CurrentValue.objects.update_or_create(
            system=system,
            kpi=value.kpi,
            defaults={"measurement": measurement, "value": value.value, "reliable": value.reliable, "measured_at": now},
        )
        recorded.append(measurement)
    if recorded:
        statuses_refresh([system.pk])
    return recorded


def system_measure(*, system: System, trigger: str) -> list[Measurement]:
    """Compute every KPI the system's threat model and runs support, and record the values."""
    return measurements_record(
        system=system, values=[*governance_values(system), *evaluation_values(system)], trigger=trigger
    )


def _check_bounds(key: str, green: float, amber: float) -> None:
    if key not in BY_KEY:
        raise ValidationError({"kpi": f"Unknown KPI '{key}'. Known KPIs: {', '.join(sorted(BY_KEY))}."})
    definition = BY_KEY[key]
    if not bounds_in_order(definition, green, amber):
        better = "at least" if definition.direction == "higher" else "at most"
        raise ValidationError(
            {
                "amber": f"For '{definition.name}' ({definition.direction} is better) the green "
                f"bound must be {better} the amber bound; got green {green}, amber {amber}."
            }
        )


@transaction.atomic
def threshold_set(
    *,
    actor: Any,
    team: Team,
    kpi: str,
    green: float,
    amber: float,
    tier: int | None = None,
    system: System | None = None,
) -> KpiThreshold:
    """Set a team's bounds for a KPI for a tier, or override them for one system (approvers)."""
    require_capability(user=actor, team_id=team.id, capability=Capability.APPROVE)
    _check_bounds(kpi, green, amber)
    if (tier is None) == (system is None):
        raise ValidationError({"tier": "Give either a tier (1-4) or a system to override."})
    if tier is not None and tier not in (1, 2, 3, 4):
        raise ValidationError({"tier": "Tiers are 1 to 4."})
    if system is not None and system.team_id != team.id:
        raise ValidationError({"system": "The system belongs to another team."})
    lookup = {"team": team, "kpi": kpi, "tier": tier, "system": system}
    threshold = KpiThreshold.objects.select_for_update().filter(**lookup).first()
    before = snapshot(threshold, ["green", "amber"]) if threshold else {}
    if threshold is None:
        threshold = KpiThreshold(**lookup)
    threshold.green, threshold.amber = green, amber
    threshold.full_clean()
    threshold.save()
    _refresh_statuses_for(threshold)
    record(
        actor=actor,
        verb="kpi_threshold.set",
        obj=threshold,
        team_id=team.id,
        changes={
            **diff(before, snapshot(threshold, ["green", "amber"])),
            "kpi": [None, kpi],
            "scope": [None, f"tier {tier}" if tier else f"system {system}"],
        },
    )
    return threshold


@transaction.atomic
def threshold_reset(*, actor: Any, threshold: KpiThreshold) -> None:
    """Remove a team threshold or system override, falling back to the next level (approvers)."""
    require_capability(user=actor, team_id=threshold.team_id, capability=Capability.APPROVE)
    record(
        actor=actor,
        verb="kpi_threshold.reset",
        obj=threshold,
        team_id=threshold.team_id,
        changes=diff(snapshot(threshold, ["kpi", "tier", "green", "amber"]), {}),
    )
    threshold.delete()
    _refresh_statuses_for(threshold)


def _refresh_statuses_for(threshold: KpiThreshold) -> None:
    """Recompute the status rows a threshold applies to: its system, or its team's systems of its tier."""
    if threshold.system_id is not None:
        statuses_refresh([threshold.system_id])
    else:
        statuses_refresh_tier(team_id=threshold.team_id, tier=threshold.tier)


@transaction.atomic
def gate_policy_set(*, actor: Any, system: System, **fields: Any) -> GatePolicy:
    """Set what the system's release gate requires (approvers)."""
    require_capability(user=actor, team_id=system.team_id, capability=Capability.APPROVE)
    unknown = set(fields) - set(GatePolicy.AUDITED_FIELDS)
    if unknown:
        raise TypeError(f"gate_policy_set got unknown fields: {', '.join(sorted(unknown))}")
    for name in ("required_green", "allowed_amber"):
        bad = sorted(set(fields.get(name, [])) - set(BY_KEY))
        if bad:
            raise ValidationError({name: f"Unknown KPI(s): {', '.join(bad)}."})
    policy, _ = GatePolicy.objects.select_for_update().get_or_create(system=system, defaults=default_policy())
    before = snapshot(policy, GatePolicy.AUDITED_FIELDS)
    for name, value in fields.items():
        setattr(policy, name, sorted(set(value)) if isinstance(value, list) else value)
    policy.full_clean()
    policy.save()
    record(
        actor=actor,
        verb="gate_policy.set",
        obj=policy,
        team_id=system.team_id,
        changes=diff(before, snapshot(policy, GatePolicy.AUDITED_FIELDS)),
    )
    return policy


def default_policy() -> dict[str, Any]:
    """The gate every system has until an approver sets its own."""
    return {
        "required_green": ["control_coverage", "robust_accuracy", "scan_critical_findings"],
        "allowed_amber": ["control_coverage", "robust_accuracy"],
        "require_fresh": True,
        "block_unreliable": True,
        "block_critical_findings": True,
        "block_unaccepted_critical_risk": True,
    }
