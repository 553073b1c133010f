"""The incident lifecycle, its guards, and closing the loop with the threat model."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from garrison.audit.models import AuditEvent
from garrison.core.exceptions import StateConflict
from incidents import services
from incidents.models import ActionStatus, IncidentStatus
from tests.factories import SystemFactory
from threatmodel import services as tm
from threatmodel.models import ThreatStatus, VersionStatus

pytestmark = pytest.mark.django_db

STAGES = ["triaged", "contained", "eradicated", "recovered"]


def finish_analysis(actor, incident):
    services.incident_update(
        actor=actor,
        incident=incident,
        root_cause="Unvetted customer reports",
        lessons_learned="Quarantine new training data",
    )


def test_incidents_are_numbered_per_team(teammate, system, incident):
    second = services.incident_open(actor=teammate, team=system.team, title="Second", systems=[system])
    assert (incident.number, second.number) == (1, 2)
    assert str(incident) == "INC-1: Backdoored spam filter"


def test_the_lifecycle_moves_one_stage_at_a_time(teammate, incident):
    with pytest.raises(StateConflict, match="cannot become contained"):
        services.incident_transition(actor=teammate, incident=incident, to="contained")
    for stage in STAGES:
        incident = services.incident_transition(actor=teammate, incident=incident, to=stage)
    assert incident.status == IncidentStatus.RECOVERED


def test_closing_needs_root_cause_lessons_and_done_actions(teammate, incident):
    for stage in STAGES:
        incident = services.incident_transition(actor=teammate, incident=incident, to=stage)
    action = services.action_add(actor=teammate, incident=incident, title="Retrain without flagged records")
    with pytest.raises(ValidationError) as error:
        services.incident_transition(actor=teammate, incident=incident, to="closed")
    assert set(error.value.message_dict) == {"root_cause", "lessons_learned", "actions"}
    finish_analysis(teammate, incident)
    with pytest.raises(ValidationError, match="verified"):
        services.action_set_status(actor=teammate, action=action, status=ActionStatus.DONE)
    services.action_set_status(
        actor=teammate,
        action=action,
        status=ActionStatus.DONE,
        verification="Re-evaluation run 42: backdoor success 0.01",
    )
    closed = services.incident_transition(actor=teammate, incident=incident, to="closed")
    assert closed.status == IncidentStatus.CLOSED and closed.closed_at is not None
    assert closed.time_to_remediate > timedelta(minutes=59)
    with pytest.raises(StateConflict, match="closed"):
        services.incident_update(actor=teammate, incident=closed, title="Changed")
    reopened = services.incident_transition(actor=teammate, incident=closed, to="open")
    assert reopened.closed_at is None


def test_timeline_entries_cannot_be_in_the_future_or_before_detection(teammate, incident):
    with pytest.raises(ValidationError, match="future"):
        services.timeline_add(
            actor=teammate, incident=incident, occurred_at=timezone.now() + timedelta(hours=1), note="later"
        )
    with pytest.raises(ValidationError, match="before the detection"):
        services.timeline_add(
            actor=teammate, incident=incident, occurred_at=timezone.now() - timedelta(days=2), note="earlier"
        )
    entry = services.timeline_add(
        actor=teammate,
        incident=incident,
        note="Poison scan flagged 14 records",
        occurred_at=timezone.now() - timedelta(minutes=30),
        atlas_tactic="aml.ta0006",
        atlas_technique="AML.T0020",
    )
    assert (entry.atlas_tactic, entry.atlas_technique) == ("AML.TA0006", "AML.T0020")
    with pytest.raises(ValidationError, match="Unknown ATLAS technique"):
        services.timeline_add(
            actor=teammate, incident=incident, note="x", occurred_at=timezone.now(), atlas_technique="AML.T9999"
        )
    assert incident.timeline.count() == 1


def test_systems_of_another_team_cannot_be_affected(teammate, system, other_system):
    with pytest.raises(ValidationError, match="incident's team"):
        services.incident_open(actor=teammate, team=system.team, title="x", systems=[system, other_system])


def test_viewers_cannot_open_or_move_incidents(viewer, system, incident):
    with pytest.raises(PermissionDenied):
        services.incident_open(actor=viewer, team=system.team, title="x", systems=[system])
    with pytest.raises(PermissionDenied):
        services.incident_transition(actor=viewer, incident=incident, to="triaged")


def test_outsiders_cannot_touch_incidents(outsider, incident):
    with pytest.raises(Http404):
        services.incident_transition(actor=outsider, incident=incident, to="triaged")


def test_each_incident_write_is_audited(teammate, incident):
    before = AuditEvent.objects.count()
    services.incident_transition(actor=teammate, incident=incident, to="triaged")
    services.timeline_add(actor=teammate, incident=incident, note="triaged", occurred_at=timezone.now())
    verbs = list(AuditEvent.objects.order_by("id").values_list("verb", flat=True)[before:])
    assert verbs == ["incident.transition", "incident.timeline_add"]


@pytest.fixture
def approved_model(owner, teammate, approver, system):
    threat_model = tm.threat_model_create(actor=owner, system=system, title="Fraud model")
    version = threat_model.versions.get()
    ingestion = tm.component_create(actor=owner, version=version, name="Ingestion", component_type="ingestion_pipeline")
    tm.version_submit(actor=teammate, version=version)
    tm.version_approve(actor=approver, version=version)
    return version, ingestion


def test_starting_a_threat_model_draft_from_an_incident(teammate, incident, approved_model):
    version, ingestion = approved_model
    poisoning = version.threats.get(component=ingestion, catalog_key="training-data-poisoning")
    assert poisoning.status == ThreatStatus.SUGGESTED and poisoning.likelihood < 4
    with pytest.raises(ValidationError, match="Link the threats"):
        services.incident_start_threat_model_draft(actor=teammate, incident=incident)
    services.incident_link(actor=teammate, incident=incident, threats=[poisoning])
    draft = services.incident_start_threat_model_draft(actor=teammate, incident=incident)
    assert draft.status == VersionStatus.DRAFT and draft.number == 2
    realised = draft.threats.get(uid=poisoning.uid)
    assert realised.status == ThreatStatus.ACCEPTED and realised.likelihood == 4
    incident.refresh_from_db()
    assert incident.threat_model_version == draft
    with pytest.raises(StateConflict):
        services.incident_start_threat_model_draft(actor=teammate, incident=incident)


def test_linking_threats_of_an_unaffected_system_is_refused(teammate, owner, incident, team):
    elsewhere = SystemFactory(team=team, name="Elsewhere", slug="elsewhere")
    version = tm.threat_model_create(actor=owner, system=elsewhere).versions.get()
    component = tm.component_create(actor=owner, version=version, name="API", component_type="serving_api")
    with pytest.raises(ValidationError, match="does not affect"):
        services.incident_link(actor=teammate, incident=incident, threats=[component.threats.first()])


def test_incident_changes_update_the_incident_kpis(teammate, system, django_capture_on_commit_callbacks):
    from kpis.models import CurrentValue

    with django_capture_on_commit_callbacks(execute=True):
        incident = services.incident_open(
            actor=teammate,
            team=system.team,
            title="x",
            systems=[system],
            detected_at=timezone.now() - timedelta(hours=10),
        )
    assert CurrentValue.objects.get(system=system, kpi="open_incidents").value == 1
    for stage in STAGES:
        incident = services.incident_transition(actor=teammate, incident=incident, to=stage)
    finish_analysis(teammate, incident)
    with django_capture_on_commit_callbacks(execute=True):
        services.incident_transition(actor=teammate, incident=incident, to="closed")
    assert CurrentValue.objects.get(system=system, kpi="open_incidents").value == 0
    assert CurrentValue.objects.get(system=system, kpi="mean_time_to_remediate").value == pytest.approx(10, abs=0.1)


def test_a_poisoning_run_that_flags_records_opens_an_incident_with_evidence(system, make_model, make_run):
    from evaluations.models import RunKind
    from evaluations.signals import run_finished
    from incidents.models import Incident

    run = make_run(make_model(), RunKind.POISONING_DETECTION, metrics={"flagged": 14, "precision": 0.93}, reliable=None)
    run_finished.send(sender=None, run_id=run.pk, system_id=system.pk, kind=run.kind, status="succeeded")
    incident = Incident.objects.get(systems=system)
    assert "14 records flagged" in incident.title and incident.detection_source == "evaluation_run"
    evidence = incident.evidence.get()
    assert evidence.reference == f"evaluation run {run.pk}" and evidence.metrics["flagged"] == 14
    run_finished.send(sender=None, run_id=run.pk, system_id=system.pk, kind=run.kind, status="succeeded")
    assert Incident.objects.filter(systems=system).count() == 1  # once per run


def test_a_clean_poisoning_run_opens_nothing(system, make_model, make_run):
    from evaluations.models import RunKind
    from evaluations.signals import run_finished
    from incidents.models import Incident

    run = make_run(make_model(), RunKind.POISONING_DETECTION, metrics={"flagged": 0}, reliable=None)
    run_finished.send(sender=None, run_id=run.pk, system_id=system.pk, kind=run.kind, status="succeeded")
    assert not Incident.objects.exists()


def test_a_remediation_action_completes_when_its_run_succeeds(teammate, incident, system, make_model, make_run):
    from evaluations.models import RunKind
    from evaluations.signals import run_finished

    run = make_run(make_model(), RunKind.ROBUSTNESS, status="queued")
    action = services.action_add(actor=teammate, incident=incident, title="Re-evaluate the retrained model", run=run)
    run_finished.send(sender=None, run_id=run.pk, system_id=system.pk, kind=run.kind, status="failed")
    action.refresh_from_db()
    assert action.status == ActionStatus.OPEN
    run_finished.send(sender=None, run_id=run.pk, system_id=system.pk, kind=run.kind, status="succeeded")
    action.refresh_from_db()
    assert action.status == ActionStatus.DONE and f"run {run.pk} succeeded" in action.verification


def test_an_action_cannot_wait_on_a_run_of_an_unaffected_system(teammate, incident, other_system, make_model, make_run):
    run = make_run(make_model(other_system))
    with pytest.raises(ValidationError, match="does not affect"):
        services.action_add(actor=teammate, incident=incident, title="x", run=run)
