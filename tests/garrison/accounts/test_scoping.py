"""Team scoping and roles, through pages and the API alike."""

from __future__ import annotations

import pytest
from django.urls import reverse

from garrison.accounts.roles import TokenRole
from garrison.audit.models import AuditEvent
from threatmodel.models import System

pytestmark = pytest.mark.django_db


def test_outsider_gets_404_for_another_teams_system_page(client, outsider, system):
    client.force_login(outsider)
    response = client.get(system.get_absolute_url())
    assert response.status_code == 404


def test_outsider_gets_404_for_another_teams_system_in_the_api(api, outsider, system):
    response = api(outsider).get(f"/api/systems/{system.id}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_missing_and_foreign_systems_answer_the_same(api, outsider, system):
    foreign = api(outsider).get(f"/api/systems/{system.id}/").json()["error"]["message"]
    missing = api(outsider).get("/api/systems/999999/").json()["error"]["message"]
    assert foreign == missing


def test_outsider_does_not_see_another_teams_systems_in_lists(api, client, outsider, system, other_system):
    listed = [row["slug"] for row in api(outsider).get("/api/systems/").json()["results"]]
    assert listed == ["other-scorer"]
    client.force_login(outsider)
    page = client.get(reverse("threatmodel:system-list")).content.decode()
    assert "Other scorer" in page and "Fraud scorer" not in page


@pytest.mark.parametrize(
    "path",
    ["/teams/fraud-ml/", "/audit/fraud-ml/", "/systems/fraud-ml/fraud-scorer/edit/"],
)
def test_outsider_gets_404_for_another_teams_pages(client, outsider, system, path):
    client.force_login(outsider)
    assert client.get(path).status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/api/teams/fraud-ml/members/", "/api/teams/fraud-ml/tokens/", "/api/teams/fraud-ml/audit-events/"],
)
def test_outsider_gets_404_for_another_teams_api(api, outsider, team, path):
    assert api(outsider).get(path).status_code == 404


def test_outsider_cannot_edit_another_teams_system(api, outsider, system):
    response = api(outsider).patch(f"/api/systems/{system.id}/", {"name": "Pwned"}, format="json")
    assert response.status_code == 404
    system.refresh_from_db()
    assert system.name == "Fraud scorer"


def test_outsider_cannot_create_a_system_in_another_team(api, outsider, team):
    response = api(outsider).post("/api/systems/", {"team": "fraud-ml", "name": "Sneaky"}, format="json")
    assert response.status_code == 404
    assert not System.objects.filter(name="Sneaky").exists()


def test_viewer_cannot_create_a_system(api, viewer, team):
    response = api(viewer).post("/api/systems/", {"team": "fraud-ml", "name": "New"}, format="json")
    assert response.status_code == 403
    assert "viewer" in response.json()["error"]["message"]
    assert not System.objects.filter(name="New").exists()


def test_viewer_cannot_edit_a_system_through_the_api_or_the_page(api, client, viewer, system):
    assert api(viewer).patch(f"/api/systems/{system.id}/", {"name": "X"}, format="json").status_code == 403
    client.force_login(viewer)
    assert client.post(f"/systems/fraud-ml/{system.slug}/edit/", {"name": "X"}).status_code == 403
    system.refresh_from_db()
    assert system.name == "Fraud scorer"


def test_viewer_can_read_the_teams_systems(api, viewer, system):
    assert api(viewer).get(f"/api/systems/{system.id}/").json()["name"] == "Fraud scorer"


def test_editor_can_create_and_edit_but_not_delete_a_system(api, teammate, team):
    client = api(teammate)
    created = client.post("/api/systems/", {"team": "fraud-ml", "name": "Churn model"}, format="json")
    assert created.status_code == 201
    system_id = created.json()["id"]
    assert client.patch(f"/api/systems/{system_id}/", {"criticality_tier": 1}, format="json").status_code == 200
    assert client.delete(f"/api/systems/{system_id}/").status_code == 403


def test_admin_can_delete_a_system(api, owner, system):
    assert api(owner).delete(f"/api/systems/{system.id}/").status_code == 204
    assert not System.objects.filter(id=system.id).exists()


def test_viewer_cannot_manage_members_or_tokens(api, viewer, team):
    client = api(viewer)
    assert client.get("/api/teams/fraud-ml/tokens/").status_code == 403
    assert client.post("/api/teams/fraud-ml/tokens/", {"name": "x"}, format="json").status_code == 403
    assert (
        client.post("/api/teams/fraud-ml/members/", {"username": "viewer", "role": "admin"}, format="json").status_code
        == 403
    )


def test_ci_token_can_read_the_teams_systems(token_api, make_token, system):
    _, secret = make_token(TokenRole.CI)
    response = token_api(secret).get("/api/systems/")
    assert response.status_code == 200
    assert [row["slug"] for row in response.json()["results"]] == ["fraud-scorer"]


def test_ci_token_cannot_change_systems(token_api, make_token, system):
    _, secret = make_token(TokenRole.CI)
    client = token_api(secret)
    assert client.post("/api/systems/", {"team": "fraud-ml", "name": "X"}, format="json").status_code == 403
    assert client.patch(f"/api/systems/{system.id}/", {"name": "X"}, format="json").status_code == 403
    assert client.delete(f"/api/systems/{system.id}/").status_code == 403


def test_ci_token_cannot_manage_tokens_members_or_read_the_audit_log(token_api, make_token, team):
    _, secret = make_token(TokenRole.CI)
    client = token_api(secret)
    assert (
        client.post("/api/teams/fraud-ml/tokens/", {"name": "escalate", "role": "editor"}, format="json").status_code
        == 403
    )
    assert client.get("/api/teams/fraud-ml/tokens/").status_code == 403
    assert (
        client.post("/api/teams/fraud-ml/members/", {"username": "owner", "role": "viewer"}, format="json").status_code
        == 403
    )
    assert client.get("/api/teams/fraud-ml/audit-events/").status_code == 403


def test_ci_token_sees_only_its_own_team(token_api, make_token, other_system):
    _, secret = make_token(TokenRole.CI)
    client = token_api(secret)
    assert client.get(f"/api/systems/{other_system.id}/").status_code == 404
    assert client.get("/api/systems/").json()["results"] == []


def test_ci_token_reports_what_it_may_do(token_api, make_token):
    _, secret = make_token(TokenRole.CI)
    me = token_api(secret).get("/api/me/").json()
    assert me["kind"] == "token"
    assert me["teams"] == [
        {"slug": "fraud-ml", "name": "Fraud ML", "role": "ci", "capabilities": ["gate", "submit_evaluations", "view"]}
    ]


def test_editor_token_writes_are_audited_as_the_token(token_api, make_token, team):
    token, secret = make_token(TokenRole.EDITOR)
    response = token_api(secret).post("/api/systems/", {"team": "fraud-ml", "name": "Bot-made"}, format="json")
    assert response.status_code == 201
    event = AuditEvent.objects.get(verb="system.create", object_id=str(response.json()["id"]))
    assert event.actor is None and event.actor_token == token
    assert event.actor_label.startswith("API token")


def test_anonymous_api_calls_are_rejected_with_401(api, system):
    response = api().get("/api/systems/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_anonymous_pages_redirect_to_login(client, system):
    response = client.get(system.get_absolute_url())
    assert response.status_code == 302 and response["Location"].startswith("/login/")
