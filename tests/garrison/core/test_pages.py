"""Layout, navigation, error pages and the API documentation."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_home_page_has_the_navigation(client, owner, system):
    client.force_login(owner)
    page = client.get("/").content.decode()
    for label in ("Systems", "Audit log", "Teams"):
        assert f">{label}</a>" in page
    assert "Fraud scorer" in page


def test_not_found_page_is_html_with_the_layout(client, owner):
    client.force_login(owner)
    response = client.get("/systems/fraud-ml/nope/")
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in response.content.decode()


def test_forbidden_page_explains_the_missing_permission(client, viewer, system):
    client.force_login(viewer)
    response = client.get(f"/systems/fraud-ml/{system.slug}/edit/")
    assert response.status_code == 403
    assert "does not allow this" in response.content.decode()


def test_openapi_schema_describes_the_api(api, owner):
    response = api(owner).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/systems/" in schema["paths"] and "/api/teams/{team}/audit-events/" in schema["paths"]


def test_swagger_ui_is_served_from_local_assets_only(client, owner):
    client.force_login(owner)
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower() and "https://" not in page


def test_static_css_is_served(client, owner):
    response = client.get("/static/css/garrison.css")
    assert response.status_code == 200
