"""Versions: immutability, the review rules, drafts copied with stable ids, diffs."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from garrison.audit.models import AuditEvent
from garrison.core.exceptions import StateConflict
from threatmodel import services
from threatmodel.diff import diff_versions
from threatmodel.models import Threat, ThreatStatus, VersionStatus

pytestmark = pytest.mark.django_db


def approve(modelled, teammate, approver):
    services.version_submit(actor=teammate, version=modelled)
    return services.version_approve(actor=approver, version=modelled, note="ok")


def test_a_new_threat_model_starts_with_an_empty_draft(draft):
    assert draft.number == 1 and draft.status == VersionStatus.DRAFT and draft.is_editable


def test_submit_then_approve_by_another_approver(modelled, teammate, approver):
    version = approve(modelled, teammate, approver)
    assert version.status == VersionStatus.APPROVED
    assert version.reviewed_by == approver


def test_the_author_cannot_approve_their_own_version(modelled, owner):
    services.version_submit(actor=owner, version=modelled)
    with pytest.raises(PermissionDenied, match="cannot approve it"):
        services.version_approve(actor=owner, version=modelled)


def test_the_submitter_cannot_approve_either(draft, approver, owner):
    services.version_submit(actor=approver, version=draft)
    with pytest.raises(PermissionDenied):
        services.version_approve(actor=approver, version=draft)


def test_an_editor_cannot_approve(modelled, teammate, owner):
    services.version_submit(actor=owner, version=modelled)
    with pytest.raises(PermissionDenied):
        services.version_approve(actor=teammate, version=modelled)


def test_approving_an_already_approved_version_is_a_conflict(modelled, teammate, approver, owner):
    version = approve(modelled, teammate, approver)
    with pytest.raises(StateConflict, match="approved"):
        services.version_approve(actor=owner, version=version)


def test_a_draft_cannot_be_approved_without_review(draft, approver):
    with pytest.raises(StateConflict):
        services.version_approve(actor=approver, version=draft)


def test_an_approved_version_is_immutable(modelled, teammate, approver, owner):
    version = approve(modelled, teammate, approver)
    component = version.components.first()
    threat = version.threats.first()
    with pytest.raises(StateConflict, match="start a new draft"):
        services.component_update(actor=owner, component=component, name="Renamed")
    with pytest.raises(StateConflict):
        services.threat_decide(actor=owner, threat=threat, status=ThreatStatus.ACCEPTED)
    with pytest.raises(StateConflict):
        services.boundary_create(actor=owner, version=version, name="New zone")
    component.refresh_from_db()
    assert component.name != "Renamed"


def test_sending_back_needs_a_note_and_returns_to_draft(modelled, owner, approver):
    services.version_submit(actor=owner, version=modelled)
    with pytest.raises(ValidationError):
        services.version_send_back(actor=approver, version=modelled, note=" ")
    version = services.version_send_back(actor=approver, version=modelled, note="Add controls for evasion")
    assert version.status == VersionStatus.DRAFT and version.review_note == "Add controls for evasion"


def test_a_new_draft_copies_everything_with_the_same_uids(modelled, teammate, approver, owner):
    version = approve(modelled, teammate, approver)
    threat = version.threats.first()
    draft = services.version_start_draft(actor=owner, threat_model=version.threat_model)
    assert draft.number == 2 and draft.based_on == version
    for name in ("trustboundarys", "components", "dataflows", "threats"):
        old = set(getattr(version, name).values_list("uid", flat=True))
        new = set(getattr(draft, name).values_list("uid", flat=True))
        assert old == new and old
    copied = draft.threats.get(uid=threat.uid)
    assert copied.pk != threat.pk and copied.title == threat.title


def test_only_one_draft_or_review_may_be_open(draft, owner):
    with pytest.raises(StateConflict, match="still draft"):
        services.version_start_draft(actor=owner, threat_model=draft.threat_model)


def test_approving_a_new_version_supersedes_the_old_one(modelled, teammate, approver, owner):
    first = approve(modelled, teammate, approver)
    second = services.version_start_draft(actor=teammate, threat_model=first.threat_model)
    services.version_submit(actor=teammate, version=second)
    services.version_approve(actor=approver, version=second)
    first.refresh_from_db()
    assert first.status == VersionStatus.SUPERSEDED


def test_diff_reports_added_removed_and_changed_elements(modelled, teammate, approver, owner):
    first = approve(modelled, teammate, approver)
    draft = services.version_start_draft(actor=owner, threat_model=first.threat_model)
    api = draft.components.get(name="Prediction API")
    services.component_update(actor=owner, component=api, name="Scoring API")
    services.component_delete(actor=owner, component=draft.components.get(name="Model registry"))
    services.component_create(
        actor=owner, version=draft, name="Feature store", component_type="feature_store", suggest=False
    )
    evasion = draft.threats.filter(component__name="Scoring API", catalog_key="evasion-adversarial-examples").first()
    services.threat_update(actor=owner, threat=evasion, likelihood=5)
    services.threat_decide(actor=owner, threat=evasion, status=ThreatStatus.ACCEPTED)
    result = diff_versions(first, draft)
    components = {c.label: c for c in next(s for s in result.sections if s.key == "components").changes}
    assert components["Feature store"].change == "added"
    assert components["Model registry"].change == "removed"
    assert components["Scoring API"].change == "changed"
    assert components["Scoring API"].fields["name"] == ("Prediction API", "Scoring API")
    threats = next(s for s in result.sections if s.key == "threats")
    changed = next(c for c in threats.changes if c.uid == str(evasion.uid))
    assert changed.fields["likelihood"] == (4, 5)
    assert changed.fields["status"] == ("suggested", "accepted")
    assert changed.fields["inherent_risk"] == (16, 20)
    removed_threats = [c for c in threats.changes if c.change == "removed"]
    assert removed_threats, "the registry's threats went with it"


def test_diff_of_identical_versions_is_empty(modelled, teammate, approver, owner):
    first = approve(modelled, teammate, approver)
    draft = services.version_start_draft(actor=owner, threat_model=first.threat_model)
    assert diff_versions(first, draft).is_empty


def test_every_version_transition_is_audited_once(modelled, teammate, approver):
    before = AuditEvent.objects.count()
    approve(modelled, teammate, approver)
    verbs = list(AuditEvent.objects.order_by("id").values_list("verb", flat=True)[before:])
    assert verbs == ["threat_model_version.submit", "threat_model_version.approve"]


def test_a_flow_between_components_of_another_version_is_refused(modelled, owner, system):
    other = services.threat_model_create(actor=owner, system=system, title="Second model").versions.get()
    foreign = modelled.components.first()
    local = services.component_create(actor=owner, version=other, name="Local", component_type="client", suggest=False)
    with pytest.raises(ValidationError, match="another version"):
        services.flow_create(actor=owner, version=other, source=local, target=foreign, data="x")
    assert not other.dataflows.exists()


def test_unknown_atlas_ids_and_scores_out_of_range_are_refused(modelled, owner):
    component = modelled.components.first()
    with pytest.raises(ValidationError, match="Unknown ATLAS technique"):
        services.threat_create(
            actor=owner,
            version=modelled,
            title="x",
            stride="tampering",
            component=component,
            atlas_techniques=["AML.T9999"],
        )
    with pytest.raises(ValidationError):
        services.threat_create(
            actor=owner, version=modelled, title="x", stride="tampering", component=component, likelihood=6
        )
    with pytest.raises(ValidationError, match="Unknown ATLAS mitigation"):
        services.control_create(actor=owner, version=modelled, name="c", atlas_mitigations=["AML.M9999"])
    assert not Threat.objects.filter(title="x").exists()


def test_not_applicable_needs_a_justification(modelled, owner):
    threat = modelled.threats.first()
    with pytest.raises(ValidationError, match="Say why"):
        services.threat_decide(actor=owner, threat=threat, status=ThreatStatus.NOT_APPLICABLE)
    services.threat_decide(
        actor=owner, threat=threat, status=ThreatStatus.NOT_APPLICABLE, justification="The API only returns labels"
    )
    threat.refresh_from_db()
    assert threat.status == ThreatStatus.NOT_APPLICABLE and threat.justification


def test_threat_models_can_be_renamed_and_deleted_until_approved(api, owner, teammate, approver, modelled):
    threat_model = modelled.threat_model
    assert (
        api(teammate)
        .patch(f"/api/threat-models/{threat_model.id}/", {"title": "Renamed"}, format="json")
        .json()["title"]
        == "Renamed"
    )
    assert api(teammate).delete(f"/api/threat-models/{threat_model.id}/").status_code == 403
    services.version_submit(actor=teammate, version=modelled)
    services.version_approve(actor=approver, version=modelled)
    assert api(owner).delete(f"/api/threat-models/{threat_model.id}/").status_code == 409


def test_control_owner_must_be_a_team_member(modelled, owner, outsider):
    with pytest.raises(ValidationError, match="not a member"):
        services.control_create(actor=owner, version=modelled, name="Owned elsewhere", owner=outsider)


def test_a_flow_cannot_be_updated_to_loop_on_one_component(modelled, owner):
    flow = modelled.dataflows.first()
    with pytest.raises(ValidationError, match="two different components"):
        services.flow_update(actor=owner, flow=flow, target=flow.source)


def test_atlas_reference_data_reloads_itself_after_a_flush(modelled, owner):
    from threatmodel.models import AtlasEntry, AtlasName, AtlasRelease

    AtlasName.objects.all().delete()
    AtlasEntry.objects.all().delete()
    AtlasRelease.objects.all().delete()
    component = modelled.components.first()
    threat = services.threat_create(
        actor=owner,
        version=modelled,
        title="Reloaded",
        stride="tampering",
        component=component,
        atlas_techniques=["AML.T0043"],
    )
    assert threat.atlas_techniques == ["AML.T0043"] and AtlasRelease.objects.filter(is_current=True).exists()
