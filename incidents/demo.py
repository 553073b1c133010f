"""Demo data for incidents: one closed incident on the spam filter, worked end to end."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from incidents import services
from incidents.models import Incident
from threatmodel.models import System, ThreatModelVersion


def seed_incidents(*, actor: Any, systems: list[System]) -> Incident | None:
    """A closed backdoor incident on the spam filter, with timeline, evidence and remediation (idempotent)."""
    system = next((s for s in systems if s.slug == "sms-spam-filter"), None)
    if system is None or Incident.objects.filter(systems=system).exists():
        return None
    detected = timezone.now() - timedelta(days=6)
    incident = services.incident_open(
        actor=actor,
        team=system.team,
        title="Trigger phrase in customer reports relabelled spam as ham",
        systems=[system],
        severity="high",
        detection_source="evaluation_run",
        detected_at=detected,
        owner=actor,
        summary="A poisoning-detection run on the weekly training batch flagged customer-reported messages that "
        "carried the same phrase and were labelled ham, the pattern of a backdoor trigger.",
    )
    for hours, note, tactic, technique in [
        (
            1,
            "Spectral-signature scan flagged 52 messages sharing the phrase; batch quarantined.",
            "AML.TA0006",
            "AML.T0020",
        ),
        (5, "Confirmed: the phrase flips spam to ham on the production model.", "", "AML.T0043"),
        (30, "Retrained without the flagged messages; backdoor success fell to 0.01.", "", ""),
    ]:
        services.timeline_add(
            actor=actor,
            incident=incident,
            occurred_at=detected + timedelta(hours=hours),
            note=note,
            atlas_tactic=tactic,
            atlas_technique=technique,
        )
    services.evidence_add(
        actor=actor,
        incident=incident,
        kind="flagged_samples",
        description="52 flagged training messages (quarantined batch 2026-W47)",
        metrics={"flagged": 52, "batch_size": 1210},
    )
    approved = ThreatModelVersion.objects.filter(threat_model__system=system, status="approved").first()
    if approved is not None:
        realised = list(
            approved.threats.filter(catalog_key__in=["training-data-poisoning", "backdoor-trigger-implant"])
        )
        services.incident_link(actor=actor, incident=incident, threats=realised)
    action = services.action_add(
        actor=actor,
        incident=incident,
        title="Retrain without the flagged messages",
        owner=actor,
        due_date=timezone.localdate(),
    )
    services.action_set_status(
        actor=actor,
        action=action,
        status="done",
        verification="Re-evaluation: backdoor success 0.01, clean accuracy unchanged.",
    )
    services.incident_update(
        actor=actor,
        incident=incident,
        root_cause="Customer spam reports went into training without review or quarantine.",
        lessons_learned="New training batches wait in quarantine until the poison scan "
        "passes; reports are rate-limited per reporter.",
    )
    for stage in ("triaged", "contained", "eradicated", "recovered", "closed"):
        incident = services.incident_transition(actor=actor, incident=incident, to=stage)
    return incident
