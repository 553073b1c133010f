"""The systems inventory: register, edit, search and filter, through pages and the API."""

from __future__ import annotations

import pytest

from garrison.audit.models import AuditEvent
from tests.factories import SystemFactory
from threatmodel.models import System

pytestmark = pytest.mark.django_db


def test_editor_registers_a_system_through_the_form(client, teammate, team):
    client.force_login(teammate)
    response = client.post(
        "/systems/new/",
        {
            "team": team.id,
            "name": "Churn predictor",
            "description": "Predicts churn.",
            "lifecycle_stage": "staging",
            "criticality_tier": 2,
            "data_classification": "confidential",
            "tags": "tabular, Customer-Facing",
            "deployment_endpoint": "ml.example.com/churn",
        },
    )
    system = System.objects.get(name="Churn predictor")
    assert response.status_code == 302 and response["Location"] == system.get_absolute_url()
    assert system.slug == "churn-predictor"
    assert system.tags == ["customer-facing", "tabular"]
    assert system.deployment_endpoint == "https://ml.example.com/churn"
    assert AuditEvent.objects.filter(verb="system.create", object_id=str(system.id)).count() == 1


def test_form_errors_are_shown_and_nothing_is_saved(client, teammate, team):
    client.force_login(teammate)
    response = client.post("/systems/new/", {"team": team.id, "name": "", "criticality_tier": 7})
    assert response.status_code == 400
    page = response.content.decode()
    assert "This field is required" in page and "Select a valid choice" in page
    assert not System.objects.filter(team=team).exists()


def test_bad_tags_are_explained(client, teammate, team):
    client.force_login(teammate)
    response = client.post(
        "/systems/new/",
        {
            "team": team.id,
            "name": "Tagged",
            "criticality_tier": 3,
            "lifecycle_stage": "research",
            "data_classification": "internal",
            "tags": "ok, no!pe",
        },
    )
    assert response.status_code == 400
    assert "Tag &#x27;no!pe&#x27; is invalid" in response.content.decode()


def test_duplicate_slug_in_a_team_is_a_form_error(client, teammate, system):
    client.force_login(teammate)
    response = client.post(
        "/systems/new/",
        {
            "team": system.team_id,
            "name": "Fraud scorer",
            "criticality_tier": 3,
            "lifecycle_stage": "research",
            "data_classification": "internal",
        },
    )
    assert response.status_code == 400
    assert "already exists" in response.content.decode()


def test_editor_edits_a_system_and_the_change_is_audited(client, teammate, system):
    client.force_login(teammate)
    response = client.post(
        f"/systems/fraud-ml/{system.slug}/edit/",
        {
            "name": "Fraud scorer",
            "slug": system.slug,
            "lifecycle_stage": "production",
            "criticality_tier": 1,
            "data_classification": "restricted",
            "tags": "vision",
        },
    )
    assert response.status_code == 302
    system.refresh_from_db()
    assert system.criticality_tier == 1
    event = AuditEvent.objects.get(verb="system.update")
    assert event.changes["criticality_tier"] == [3, 1]
    assert "Tier 1" in client.get(system.get_absolute_url()).content.decode()


def test_systems_list_searches_and_filters(client, viewer, team):
    SystemFactory(team=team, name="Spam filter", tags=["nlp"], criticality_tier=1, lifecycle_stage="production")
    SystemFactory(team=team, name="Digits classifier", tags=["vision"], criticality_tier=3)
    client.force_login(viewer)

    def names(**query):
        page = client.get("/systems/", query).content.decode()
        return [n for n in ("Spam filter", "Digits classifier") if n in page]

    assert names(q="spam") == ["Spam filter"]
    assert names(tier=3) == ["Digits classifier"]
    assert names(stage="production") == ["Spam filter"]
    assert names(tag="vision") == ["Digits classifier"]
    assert names() == ["Spam filter", "Digits classifier"]


def test_api_lists_filter_and_paginate(api, viewer, team):
    for i in range(5):
        SystemFactory(team=team, name=f"Model {i}", tags=["batch"])
    data = api(viewer).get("/api/systems/", {"tag": "batch", "page_size": 2}).json()
    assert data["count"] == 5 and len(data["results"]) == 2 and data["next"]


def test_system_list_page_costs_a_fixed_number_of_queries(client, viewer, team, django_assert_max_num_queries):
    for i in range(20):
        SystemFactory(team=team, name=f"Model {i}")
    client.force_login(viewer)
    with django_assert_max_num_queries(8):
        client.get("/systems/")
