"""The audit trail: append-only, one row per service write, readable with filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.sites import site
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.test import RequestFactory
from django.utils import timezone

from garrison.accounts import services as account_services
from garrison.accounts.roles import Role, TokenRole
from garrison.audit.models import AuditEvent, AuditImmutableError
from garrison.audit.services import record
from tests.factories import UserFactory
from threatmodel import services as system_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(owner, system):
    with transaction.atomic():
        return record(actor=owner, verb="system.test", obj=system, team_id=system.team_id, changes={"a": [1, 2]})


def test_audit_event_cannot_be_updated_through_the_orm(event):
    event.verb = "system.tampered"
    with pytest.raises(AuditImmutableError):
        event.save()
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(verb="system.tampered")
    assert AuditEvent.objects.get(pk=event.pk).verb == "system.test"


def test_audit_event_cannot_be_deleted_through_the_orm(event):
    with pytest.raises(AuditImmutableError):
        event.delete()
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the database trigger is PostgreSQL's")
def test_audit_event_cannot_be_changed_even_with_raw_sql_on_postgresql(event):
    for statement in (
        "UPDATE audit_auditevent SET verb = 'x' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).verb == "system.test"


def test_admin_offers_no_add_change_or_delete_of_audit_events(event):
    admin = site._registry[AuditEvent]
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(username="root", is_superuser=True, is_staff=True)
    assert not admin.has_add_permission(request)
    assert not admin.has_change_permission(request, event)
    assert not admin.has_delete_permission(request, event)


def test_api_offers_no_way_to_change_or_delete_audit_events(api, owner, event):
    client = api(owner)
    url = "/api/teams/fraud-ml/audit-events/"
    assert client.get(url).status_code == 200
    for method in (client.post, client.put, client.patch, client.delete):
        assert method(url, {}, format="json").status_code == 405
    assert AuditEvent.objects.filter(pk=event.pk, verb="system.test").exists()


@pytest.mark.django_db(transaction=True)
def test_record_refuses_to_run_outside_a_transaction(owner, system):
    with pytest.raises(RuntimeError, match="inside the service's transaction"):
        record(actor=owner, verb="system.test", obj=system, team_id=system.team_id)


SERVICE_CALLS = {
    "team_create": lambda ctx: account_services.team_create(actor=ctx["owner"], name="New Team"),
    "membership_add": lambda ctx: account_services.membership_add(
        actor=ctx["owner"], team=ctx["team"], username=ctx["newcomer"].username, role=Role.VIEWER
    ),
    "membership_change_role": lambda ctx: account_services.membership_change_role(
        actor=ctx["owner"], membership=ctx["viewer"].memberships.get(), role=Role.EDITOR
    ),
    "membership_remove": lambda ctx: account_services.membership_remove(
        actor=ctx["owner"], membership=ctx["viewer"].memberships.get()
    ),
    "api_token_create": lambda ctx: account_services.api_token_create(
        actor=ctx["owner"], team=ctx["team"], name="ci", role=TokenRole.CI
    ),
    "api_token_revoke": lambda ctx: account_services.api_token_revoke(
        actor=ctx["owner"],
        token=account_services.api_token_create(actor=ctx["owner"], team=ctx["team"], name="old", role=TokenRole.CI)[0],
    ),
    "system_create": lambda ctx: system_services.system_create(actor=ctx["owner"], team=ctx["team"], name="New"),
    "system_update": lambda ctx: system_services.system_update(
        actor=ctx["owner"], system=ctx["system"], criticality_tier=1
    ),
    "system_delete": lambda ctx: system_services.system_delete(actor=ctx["owner"], system=ctx["system"]),
}
EXTRA_ROWS = {"api_token_revoke": 1}  # the revoke test first creates the token it revokes


@pytest.mark.parametrize("service", sorted(SERVICE_CALLS))
def test_every_service_write_leaves_exactly_one_audit_row(service, owner, viewer, team, system):
    ctx = {
        "owner": owner,
        "viewer": viewer,
        "team": team,
        "system": system,
        "newcomer": UserFactory(username="newcomer"),
    }
    before = AuditEvent.objects.count()
    SERVICE_CALLS[service](ctx)
    assert AuditEvent.objects.count() - before == 1 + EXTRA_ROWS.get(service, 0)
    latest = AuditEvent.objects.order_by("-id").first()
    assert latest.actor == owner and latest.actor_label == "owner"
    assert latest.verb.split(".")[1] in service


def test_an_update_that_changes_nothing_writes_no_audit_row(owner, system):
    before = AuditEvent.objects.count()
    system_services.system_update(actor=owner, system=system, name=system.name)
    assert AuditEvent.objects.count() == before


def test_audit_row_records_before_and_after_values_and_request_id(api, owner, system):
    client = api(owner)
    client.patch(
        f"/api/systems/{system.id}/", {"criticality_tier": 1}, format="json", HTTP_X_REQUEST_ID="req-1234567890"
    )
    event = AuditEvent.objects.get(verb="system.update")
    assert event.changes == {"criticality_tier": [3, 1]}
    assert event.request_id == "req-1234567890"
    assert event.team_id == system.team_id


def test_a_failed_write_leaves_no_audit_row_and_no_object(api, teammate, team):
    before = AuditEvent.objects.count()
    response = api(teammate).post(
        "/api/systems/", {"team": "fraud-ml", "name": "x", "tags": ["Not A Tag!"]}, format="json"
    )
    assert response.status_code == 400
    assert AuditEvent.objects.count() == before


def _events(n, owner, system):
    with transaction.atomic():
        for i in range(n):
            record(actor=owner, verb=f"system.step{i % 3}", obj=system, team_id=system.team_id)


def test_audit_log_page_filters_by_verb_and_actor(client, owner, viewer, system):
    _events(6, owner, system)
    client.force_login(viewer)
    page = client.get("/audit/fraud-ml/", {"verb": "system.step1"}).content.decode()
    assert page.count("<code>system.step1</code>") == 2
    assert "<code>system.step0</code>" not in page
    assert "No audit events match" in client.get("/audit/fraud-ml/", {"actor": "nobody"}).content.decode()


def test_audit_log_page_pages_through_events(client, owner, system):
    _events(60, owner, system)
    client.force_login(owner)
    first = client.get("/audit/fraud-ml/").content.decode()
    assert "Page 1 of 2" in first
    second = client.get("/audit/fraud-ml/", {"page": 2}).content.decode()
    assert "Page 2 of 2" in second


def test_audit_log_page_filters_by_date_range(client, owner, system):
    _events(2, owner, system)
    client.force_login(owner)
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert "No audit events match" in client.get("/audit/fraud-ml/", {"since": tomorrow}).content.decode()
    today = timezone.now().date().isoformat()
    assert "system.step0" in client.get("/audit/fraud-ml/", {"since": today, "until": today}).content.decode()


def test_audit_api_filters_and_pages(api, owner, system):
    _events(5, owner, system)
    data = api(owner).get("/api/teams/fraud-ml/audit-events/", {"verb": "system.step2", "page_size": 1}).json()
    assert data["count"] == 1
    assert data["results"][0]["verb"] == "system.step2"
    bad = api(owner).get("/api/teams/fraud-ml/audit-events/", {"since": "2026-02-02", "until": "2026-01-01"})
    assert bad.status_code == 400 and "since" in bad.json()["error"]["fields"]
    unknown = api(owner).get("/api/teams/fraud-ml/audit-events/", {"colour": "red"})
    assert unknown.status_code == 400 and "colour" in unknown.json()["error"]["fields"]
