"""Who may read and write threat models through the API: team roles, outsiders and CI tokens."""

from __future__ import annotations

import pytest

from garrison.accounts.roles import TokenRole

pytestmark = pytest.mark.django_db

READERS = {"owner": 200, "teammate": 200, "approver": 200, "viewer": 200, "outsider": 404, "ci": 200}
WRITERS = {"owner": 201, "teammate": 201, "approver": 201, "viewer": 403, "outsider": 404, "ci": 403}


@pytest.fixture
def client_for(request, api, make_token, token_api):
    """``client_for(persona)``: an API client for a persona, or for a CI token of the team."""

    def make(persona: str):
        if persona == "ci":
            _, secret = make_token(TokenRole.CI)
            return token_api(secret)
        return api(request.getfixturevalue(persona))

    return make


@pytest.mark.parametrize("persona", list(READERS))
@pytest.mark.parametrize(
    "path",
    [
        "/api/systems/{system}/threat-models/",
        "/api/threat-models/{threat_model}/",
        "/api/versions/{version}/",
        "/api/versions/{version}/threats/",
        "/api/components/{component}/",
        "/api/versions/{version}/otm/",
    ],
)
def test_reading_threat_models(client_for, content, system, persona, path):
    url = path.format(
        system=system.id, threat_model=content.threat_model.id, version=content.version.id, component=content.api.id
    )
    assert client_for(persona).get(url).status_code == READERS[persona]


@pytest.mark.parametrize("persona", list(WRITERS))
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/systems/{system}/threat-models/", {"title": "Another"}),
        ("/api/versions/{version}/components/", {"name": "Batch job", "component_type": "ingestion_pipeline"}),
        ("/api/versions/{version}/controls/", {"name": "Input filtering"}),
    ],
)
def test_writing_threat_models(client_for, content, system, persona, path, body):
    url = path.format(system=system.id, version=content.version.id)
    response = client_for(persona).post(url, body, format="json")
    assert response.status_code == WRITERS[persona], response.json()


@pytest.mark.parametrize(("persona", "expected"), [("viewer", 403), ("ci", 403), ("outsider", 404)])
def test_only_editors_change_or_remove_elements(client_for, content, persona, expected):
    client = client_for(persona)
    assert client.patch(f"/api/components/{content.api.id}/", {"name": "x"}, format="json").status_code == expected
    assert client.delete(f"/api/threats/{content.threat.id}/").status_code == expected
    assert client.post(f"/api/versions/{content.version.id}/submit/").status_code == expected


def test_anonymous_callers_are_refused(api, content):
    assert api().get(f"/api/versions/{content.version.id}/").status_code in (401, 403)
