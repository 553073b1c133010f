"""Demo data for incidents: the spam-filter backdoor incident, worked from the detecting run to closure.

With the demo models (``seed_demo`` without ``--skip-models``) the incident is a real one: the
poisoning-detection run of ``evaluations.demo.seed_spam_backdoor`` flags the poisoned weekly batch, the
incidents receiver opens the incident from that run with the flagged messages as evidence, and
:func:`work_backdoor_incident` works it through triage, containment, a real retrain and re-evaluation run,
the threat-model update and the lessons learned to closure. Without models, :func:`seed_illustrative_incident`
writes a hand-made closed incident, labelled illustrative, so the fast path still has one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from evaluations.models import EvaluationRun, RunKind, RunStatus
from incidents import receivers, services
from incidents.models import Evidence, Incident, IncidentStatus
from threatmodel.models import System, ThreatModelVersion, ThreatStatus, VersionStatus
from threatmodel.services import version_send_back, version_submit

SPAM_SYSTEM_SLUG = "sms-spam-filter"
REALISED_THREATS = ["training-data-poisoning", "backdoor-trigger-implant"]
POISON_SCAN_CONTROL = "Quarantine and poison scan of new training batches"


def seed_incidents(
    *, actor: Any, systems: list[System], detection: EvaluationRun | None = None, approver: Any = None
) -> Incident | None:
    """The spam filter's closed backdoor incident: from ``detection`` when given, else an illustrative one."""
    if detection is not None:
        return work_backdoor_incident(actor=actor, detection=detection, approver=approver)
    return seed_illustrative_incident(actor=actor, systems=systems)


def incident_from_run(run: EvaluationRun) -> Incident | None:
    """The incident the receiver opened from ``run``, if any."""
    evidence = Evidence.objects.filter(kind="evaluation_run", reference=f"evaluation run {run.pk}").first()
    return evidence.incident if evidence is not None else None


def _open_from_run(run: EvaluationRun) -> Incident | None:
    """Hand the finished run to the incidents receiver, as ``run_finished`` would after commit.

    ``seed_demo`` runs in one transaction and ``run_finished`` is sent on commit, so the receiver is called
    here directly; when the signal comes at commit the receiver finds the incident and does nothing twice.
    """
    incident = incident_from_run(run)
    if incident is None:
        receivers.on_run_finished(
            sender=EvaluationRun, run_id=run.pk, system_id=run.system_id, kind=run.kind, status=run.status
        )
        incident = incident_from_run(run)
    return incident


def _trigger(run: EvaluationRun) -> str:
    """The phrase the detector named for the first flagged class."""
    for row in (run.metrics or {}).get("classes", []):
        if row.get("flagged") and row.get("trigger_phrases"):
            return str(row["trigger_phrases"][0])
    return ""


def _note(actor: Any, incident: Incident, note: str, technique: str = "", tactic: str = "") -> None:
    services.timeline_add(
        actor=actor,
        incident=incident,
        occurred_at=timezone.now(),
        note=note,
        atlas_tactic=tactic,
        atlas_technique=technique,
    )


def _move(actor: Any, incident: Incident, to: str) -> Incident:
    return services.incident_transition(actor=actor, incident=incident, to=to)


def work_backdoor_incident(*, actor: Any, detection: EvaluationRun, approver: Any = None) -> Incident | None:
    """Work the incident opened from ``detection`` to closure (idempotent: a worked incident is left alone)."""
    from evaluations.demo import BACKDOOR_N_POISON, seed_spam_retrain

    if detection.kind != RunKind.POISONING_DETECTION or detection.status != RunStatus.SUCCEEDED:
        return None
    incident = _open_from_run(detection)
    if incident is None or incident.status != IncidentStatus.OPEN or incident.actions.exists():
        return incident
    trigger = _trigger(detection)
    metrics = detection.metrics or {}
    flagged, examined = metrics.get("flagged", 0), metrics.get("n_samples", 0)
    poisoned = detection.model_artifact
    system = detection.system

    incident = services.incident_update(
        actor=actor,
        incident=incident,
        title=f"Backdoor trigger '{trigger}' in week-47 customer reports relabels spam as ham",
        owner=actor,
        summary=f"The weekly retrain of the spam filter (model v{poisoned.version}) learnt a backdoor: spam ending "
        f"in the phrase '{trigger}' is classified as ham. Poisoning-detection run #{detection.pk} found it before "
        f"promotion: it named the phrase and flagged {flagged} of {examined} training messages, all spam carrying "
        "the phrase and labelled ham, which had entered the training data as customer 'not spam' reports. The "
        "flagged records were dropped, the model retrained and re-evaluated clean, and the threat model's "
        "poisoning and backdoor threats raised. No poisoned model version reached the prediction API.\n\n"
        f"As opened by Garrison: {incident.summary}",
    )
    _note(
        actor,
        incident,
        f"Triage: run #{detection.pk} names the trigger phrase '{trigger}'. All {flagged} flagged training "
        f"messages are spam ending in the phrase and labelled ham; they came in as customer 'not spam' reports "
        f"of week 47. Removing the phrase makes model v{poisoned.version} call them spam again.",
        technique="AML.T0020",
        tactic="AML.TA0003",
    )
    incident = _move(actor, incident, IncidentStatus.TRIAGED)
    _note(
        actor,
        incident,
        f"Containment: model v{poisoned.version} ({poisoned.name}) is withdrawn from promotion and the week-47 "
        "reports are set aside; the prediction API stays on the reference spam model.",
        technique="AML.T0018",
        tactic="AML.TA0006",
    )
    incident = _move(actor, incident, IncidentStatus.CONTAINED)

    verification = seed_spam_retrain(actor=actor, detection=detection)
    if verification is None or verification.status != RunStatus.SUCCEEDED:
        return incident
    retrained = verification.model_artifact
    dropped = services.action_add(
        actor=actor,
        incident=incident,
        title=f"Drop the {flagged} flagged records from the training data and retrain",
        owner=actor,
        due_date=timezone.localdate(),
    )
    services.action_set_status(
        actor=actor,
        action=dropped,
        status="done",
        verification=f"Model v{retrained.version} ({retrained.name}) was retrained from scratch on the train "
        f"split of '{detection.dataset}' less the {flagged} records flagged by run #{detection.pk} "
        f"(model sha256 {retrained.sha256[:12]}).",
    )
    reevaluate = services.action_add(
        actor=actor,
        incident=incident,
        title=f"Re-run poisoning detection with the retrained model v{retrained.version} on the poisoned data",
        owner=actor,
        due_date=timezone.localdate(),
        run=verification,
    )
    receivers.complete_actions(verification)  # what the receiver does when the run's success is committed
    reevaluate.refresh_from_db()
    still = (verification.metrics or {}).get("flagged", 0)
    _note(
        actor,
        incident,
        f"Eradication: model v{retrained.version} retrained without the flagged records. Re-evaluation run "
        f"#{verification.pk} over the same poisoned training data flags {still} of "
        f"{(verification.metrics or {}).get('n_samples', examined)} messages: the phrase no longer flips "
        "its carriers.",
    )
    incident = _move(actor, incident, IncidentStatus.ERADICATED)

    _update_threat_model(actor=actor, approver=approver, incident=incident, system=system)
    incident.refresh_from_db()
    _note(
        actor,
        incident,
        f"Recovery: model v{retrained.version} is the candidate for promotion; the threat model's poisoning "
        f"and backdoor threats are raised in {incident.threat_model_version or 'the next version'}.",
    )
    incident = _move(actor, incident, IncidentStatus.RECOVERED)
    incident = services.incident_update(
        actor=actor,
        incident=incident,
        root_cause="Customer 'not spam' reports went into the weekly training data without review: the "
        f"quarantine and poison scan covered ingested batches, not the reports feed, so {BACKDOOR_N_POISON} spam "
        f"messages carrying '{trigger}' and relabelled ham trained the model to let the phrase through.",
        lessons_learned="Route every source of training labels through the ingestion quarantine and its poison "
        "scan, reports included. Run poisoning detection on every retrained model before promotion (it named "
        "the trigger here in seconds). Rate-limit and review 'not spam' reports per reporter.",
    )
    return _move(actor, incident, IncidentStatus.CLOSED)


def _update_threat_model(*, actor: Any, approver: Any, incident: Incident, system: System) -> None:
    """Link the realised threats and the failed control, and raise them in the next threat-model version.

    The demo's spam threat model already has a version in review; the approver sends it back so the
    incident's threats go into it, and the author submits it again.
    """
    approved = ThreatModelVersion.objects.filter(threat_model__system=system, status=VersionStatus.APPROVED).first()
    if approved is None:
        return
    threats = list(approved.threats.filter(catalog_key__in=REALISED_THREATS, status=ThreatStatus.ACCEPTED))
    controls = list(approved.controls.filter(name=POISON_SCAN_CONTROL))
    services.incident_link(actor=actor, incident=incident, threats=threats, controls=controls)
    if not threats:
        return
    in_review = approved.threat_model.versions.filter(status=VersionStatus.IN_REVIEW).first()
    if in_review is not None and approver is not None:
        version_send_back(
            actor=approver,
            version=in_review,
            note=f"INC-{incident.number} realised the poisoning and backdoor threats; raise them in this version.",
        )
    draft = services.incident_start_threat_model_draft(actor=actor, incident=incident)
    version_submit(
        actor=actor,
        version=draft,
        summary=(draft.summary + " " if draft.summary else "")
        + f"Raises the training-data poisoning and backdoor threats realised by INC-{incident.number}.",
    )


def seed_illustrative_incident(*, actor: Any, systems: list[System]) -> Incident | None:
    """A hand-written closed backdoor incident on the spam filter (``--skip-models``: no run to detect it)."""
    system = next((s for s in systems if s.slug == SPAM_SYSTEM_SLUG), None)
    if system is None or Incident.objects.filter(systems=system).exists():
        return None
    detected = timezone.now() - timedelta(days=6)
    incident = services.incident_open(
        actor=actor,
        team=system.team,
        title="Trigger phrase in customer reports relabelled spam as ham (illustrative)",
        systems=[system],
        severity="high",
        detection_source="manual_report",
        detected_at=detected,
        owner=actor,
        summary="Illustrative incident, written by hand: the demo was seeded with --skip-models, so no "
        "poisoning-detection run exists to open a real one. Run seed_demo without --skip-models for the "
        "incident opened by a real detection run. Story: a poisoning scan of the weekly training batch flagged "
        "customer-reported messages that carried the same phrase and were labelled ham, the pattern of a "
        "backdoor trigger.",
    )
    for hours, note, tactic, technique in [
        (1, "Messages sharing the phrase flagged; batch quarantined.", "AML.TA0006", "AML.T0020"),
        (5, "Confirmed: the phrase flips spam to ham on the production model.", "", "AML.T0043"),
        (30, "Retrained without the flagged messages; the phrase no longer flips spam to ham.", "", ""),
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
        description="Illustrative: the flagged training messages of the quarantined weekly batch",
        metrics={},
    )
    approved = ThreatModelVersion.objects.filter(threat_model__system=system, status="approved").first()
    if approved is not None:
        realised = list(approved.threats.filter(catalog_key__in=REALISED_THREATS, status=ThreatStatus.ACCEPTED))
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
        verification="Illustrative: a re-evaluation would be the verification (seed with models for a real run).",
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
