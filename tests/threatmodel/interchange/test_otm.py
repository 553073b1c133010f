"""Open Threat Model export and import: mapping, a lossless round trip, and refusals that write nothing."""

from __future__ import annotations

import copy
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from garrison.audit.models import AuditEvent
from tests.threatmodel.api.builders import build_version, snapshot
from threatmodel import services
from threatmodel.interchange import MAX_IMPORT_BYTES, export_otm
from threatmodel.interchange.otm import DEFAULT_ZONE_ID, score_from_otm, score_to_otm
from threatmodel.models import ThreatModel, ThreatModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def content(teammate, owner, system):
    """A draft by ``teammate`` with a control owned by ``owner``."""
    return build_version(actor=teammate, system=system, owner=owner)


def test_scores_map_onto_0_to_100_and_back():
    assert [score_to_otm(v) for v in range(1, 6)] == [0, 25, 50, 75, 100]
    assert [score_from_otm(score_to_otm(v)) for v in range(1, 6)] == [1, 2, 3, 4, 5]
    assert score_from_otm(90) == 5 and score_from_otm(10) == 1


def test_export_is_an_otm_0_2_0_document_with_every_element(api, viewer, content):
    response = api(viewer).get(f"/api/versions/{content.version.id}/otm/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="fraud-scorer-{content.threat_model.id}-v1.otm.json"'
    )
    otm = response.json()
    assert otm["otmVersion"] == "0.2.0" and otm["project"]["name"] == "Fraud scorer threat model"
    zones = {z["id"]: z for z in otm["trustZones"]}
    assert zones[str(content.boundary.uid)]["name"] == "Serving VPC"
    assert zones[DEFAULT_ZONE_ID]["attributes"]["garrison.defaultZone"] is True
    components = {c["name"]: c for c in otm["components"]}
    assert components["Merchant app"]["parent"] == {"trustZone": DEFAULT_ZONE_ID}
    api_component = components["Scoring API"]
    assert api_component["attributes"]["garrison.componentType"] == "serving_api"
    instance = next(i for i in api_component["threats"] if i["threat"] == str(content.threat.uid))
    assert instance["state"] == "MITIGATED"
    assert instance["mitigations"] == [{"mitigation": str(content.control.uid), "state": "IMPLEMENTED"}]
    [flow] = otm["dataflows"]
    assert flow["source"] == str(content.client.uid) and flow["destination"] == str(content.api.uid)
    assert flow["attributes"] == {"data": "Transactions", "protocol": "HTTPS", "authenticated": True}
    threat = next(t for t in otm["threats"] if t["id"] == str(content.threat.uid))
    assert threat["categories"] == ["Tampering"] and threat["risk"] == {"likelihood": 75, "impact": 100}
    assert threat["attributes"]["atlas_techniques"] == ["AML.T0043"] and "AML.T0043" in threat["tags"]
    dismissed = next(t for t in otm["threats"] if t["id"] == str(content.dismissed.uid))
    assert dismissed["attributes"]["status"] == "not_applicable" and dismissed["attributes"]["catalog_key"]
    [mitigation] = otm["mitigations"]
    assert mitigation["riskReduction"] == 40
    assert mitigation["attributes"] == {
        "type": "preventive",
        "status": "verified",
        "atlas_mitigations": ["AML.M0002"],
        "owner": "owner",
        "due_date": content.control.due_date.isoformat(),
    }
    json.dumps(export_otm(content.version))  # plain JSON types only


def test_export_then_import_is_lossless(api, teammate, system, content):
    otm = api(teammate).get(f"/api/versions/{content.version.id}/otm/").json()
    response = api(teammate).post(
        f"/api/systems/{system.id}/threat-models/import/",
        {"format": "otm", "document": otm, "title": "Round trip"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    report = response.json()
    assert report["imported"] == {
        "trust_boundaries": 1,
        "components": 3,
        "data_flows": 1,
        "threats": content.version.threats.count(),
        "controls": 1,
    }
    assert report["unmapped"] == [] and report["guesses"] == []
    imported = ThreatModelVersion.objects.get(pk=report["version"])
    assert imported.threat_model.title == "Round trip" and imported.status == "draft"
    original, copy_ = snapshot(content.version), snapshot(imported)
    for section in original:
        assert copy_[section] == original[section], section
    # Exporting the copy gives the same document, up to ids and export metadata.
    again = export_otm(imported)
    for key in ("trustZones", "components", "dataflows", "threats", "mitigations"):
        assert len(again[key]) == len(otm[key])
    assert AuditEvent.objects.filter(verb="threat_model_version.import", object_id=str(imported.id)).count() == 1


def test_import_as_a_new_draft_replaces_the_copied_content(api, teammate, approver, content, other_system, outsider):
    services.version_submit(actor=teammate, version=content.version)
    services.version_approve(actor=approver, version=content.version)
    otm = export_otm(content.version)
    otm["components"] = [c for c in otm["components"] if c["name"] != "Merchant app"]
    otm["dataflows"] = []
    upload = SimpleUploadedFile("model.otm.json", json.dumps(otm).encode(), content_type="application/json")
    response = api(teammate).post(
        f"/api/threat-models/{content.threat_model.id}/import/", {"format": "otm", "file": upload}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    report = response.json()
    draft = ThreatModelVersion.objects.get(pk=report["version"])
    assert draft.number == 2 and draft.based_on == content.version
    assert report["removed_from_draft"]["components"] == 3 and report["imported"]["components"] == 2
    assert {c.name for c in draft.components.all()} == {"Scoring API", "Training data"}
    again = api(teammate).post(
        f"/api/threat-models/{content.threat_model.id}/import/", {"format": "otm", "document": otm}, format="json"
    )
    assert again.status_code == 409  # a draft is open


def _refused(response, status=400):
    assert response.status_code == status, response.json()
    return response.json()["error"]


def _nothing_written(before_models, before_events):
    assert ThreatModel.objects.count() == before_models
    assert AuditEvent.objects.count() == before_events


def test_a_file_that_is_not_json_is_a_400_and_nothing_is_written(api, teammate, system):
    counts = ThreatModel.objects.count(), AuditEvent.objects.count()
    upload = SimpleUploadedFile("model.otm", b"\x00\x01 not json", content_type="application/octet-stream")
    error = _refused(
        api(teammate).post(
            f"/api/systems/{system.id}/threat-models/import/", {"format": "otm", "file": upload}, format="multipart"
        )
    )
    assert "not JSON" in error["fields"]["file"][0]
    _nothing_written(*counts)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([1, 2, 3], "$: An OTM document is a JSON object"),
        ({"project": {"name": "x", "id": "x"}}, "otmVersion"),
        ({"otmVersion": "0.2.0", "project": "x"}, "project: must be an object"),
        ({"otmVersion": "0.2.0", "project": {"name": "x", "id": "x"}, "components": {}}, "components: must be a list"),
        (
            {"otmVersion": "0.2.0", "project": {"name": "x", "id": "x"}, "components": [{"id": "a"}]},
            "components[0]: needs the string field(s) name, type",
        ),
    ],
)
def test_a_document_of_the_wrong_structure_is_a_400_saying_what_is_wrong(api, teammate, system, document, expected):
    counts = ThreatModel.objects.count(), AuditEvent.objects.count()
    error = _refused(
        api(teammate).post(
            f"/api/systems/{system.id}/threat-models/import/", {"format": "otm", "document": document}, format="json"
        )
    )
    assert any(expected in message for message in error["fields"]["document"]), error
    _nothing_written(*counts)


def test_unknown_references_are_each_reported_and_nothing_is_written(api, teammate, system, content):
    otm = export_otm(content.version)
    broken = copy.deepcopy(otm)
    broken["components"][0]["parent"] = {"trustZone": "nowhere"}
    broken["dataflows"][0]["destination"] = "ghost"
    broken["components"][1]["threats"].append({"threat": "no-such-threat", "state": "EXPOSED"})
    broken["components"][1]["threats"][0]["mitigations"] = [{"mitigation": "no-such-control", "state": "REQUIRED"}]
    counts = ThreatModel.objects.count(), AuditEvent.objects.count()
    error = _refused(
        api(teammate).post(
            f"/api/systems/{system.id}/threat-models/import/",
            {"format": "otm", "document": broken, "title": "Broken"},
            format="json",
        )
    )
    messages = "\n".join(error["fields"]["document"])
    assert "components[0].parent.trustZone: 'nowhere' is not a trust zone here." in messages
    assert "dataflows[0].destination: 'ghost' is not a component here." in messages
    assert "'no-such-threat' is not in the document's threats." in messages
    assert "'no-such-control' is not in the document's mitigations." in messages
    _nothing_written(*counts)


def test_an_oversize_file_is_a_413_and_nothing_is_written(api, teammate, system):
    counts = ThreatModel.objects.count(), AuditEvent.objects.count()
    upload = SimpleUploadedFile("big.json", b" " * (MAX_IMPORT_BYTES + 1), content_type="application/json")
    error = _refused(
        api(teammate).post(
            f"/api/systems/{system.id}/threat-models/import/", {"format": "otm", "file": upload}, format="multipart"
        ),
        status=413,
    )
    assert "import limit" in error["message"]
    _nothing_written(*counts)


def test_a_failure_while_writing_rolls_the_whole_import_back(api, teammate, system, content):
    otm = export_otm(content.version)
    otm["threats"][0]["categories"] = ["Tampering"]
    otm["mitigations"][0]["attributes"]["due_date"] = "soon"
    counts = ThreatModel.objects.count(), AuditEvent.objects.count()
    error = _refused(
        api(teammate).post(
            f"/api/systems/{system.id}/threat-models/import/",
            {"format": "otm", "document": otm, "title": "Half"},
            format="json",
        )
    )
    assert "is not a date" in error["fields"]["document"][0]
    _nothing_written(*counts)


def test_unknown_atlas_ids_and_owners_are_left_out_and_reported(api, teammate, system, content):
    otm = export_otm(content.version)
    threat = next(t for t in otm["threats"] if t["id"] == str(content.threat.uid))
    threat["attributes"]["atlas_techniques"] = ["AML.T0043", "AML.T9999"]
    otm["mitigations"][0]["attributes"]["owner"] = "nobody"
    response = api(teammate).post(
        f"/api/systems/{system.id}/threat-models/import/",
        {"format": "otm", "document": otm, "title": "Partial"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    reasons = [u["reason"] for u in response.json()["unmapped"]]
    assert any("AML.T9999" in r for r in reasons) and any("'nobody'" in r for r in reasons)
    imported = ThreatModelVersion.objects.get(pk=response.json()["version"])
    assert imported.threats.get(title=content.threat.title).atlas_techniques == ["AML.T0043"]
    assert imported.controls.get().owner is None


def test_a_document_must_come_as_exactly_one_of_document_and_file(api, teammate, system):
    response = api(teammate).post(f"/api/systems/{system.id}/threat-models/import/", {"format": "otm"}, format="json")
    assert _refused(response)["fields"]["document"]
    bad_format = api(teammate).post(
        f"/api/systems/{system.id}/threat-models/import/", {"format": "csv", "document": {}}, format="json"
    )
    assert "format" in _refused(bad_format)["fields"]


def test_ci_tokens_cannot_import(make_token, token_api, system, content):
    from garrison.accounts.roles import TokenRole

    _, secret = make_token(TokenRole.CI)
    response = token_api(secret).post(
        f"/api/systems/{system.id}/threat-models/import/",
        {"format": "otm", "document": export_otm(content.version)},
        format="json",
    )
    assert response.status_code == 403


@pytest.mark.urls("tests.threatmodel.interchange.urls")
def test_the_pages_download_otm_and_import_a_file_showing_the_report(client, teammate, system, content):
    client.force_login(teammate)
    download = client.get(f"/versions/{content.version.id}/otm/")
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment;")
    assert json.loads(download.content)["otmVersion"] == "0.2.0"
    form = client.get(f"/systems/{system.id}/threat-models/import/")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.content.decode()
    upload = SimpleUploadedFile("model.otm.json", download.content, content_type="application/json")
    page = client.post(
        f"/systems/{system.id}/threat-models/import/", {"format": "otm", "file": upload, "title": "From the page"}
    )
    assert page.status_code == 200, page.content.decode()[:2000]
    assert "Import report" in page.content.decode()
    assert ThreatModel.objects.filter(title="From the page").exists()
    garbage = SimpleUploadedFile("x.json", b"{", content_type="application/json")
    failed = client.post(f"/threat-models/{content.threat_model.id}/import/", {"format": "otm", "file": garbage})
    assert failed.status_code == 400 and "not JSON" in failed.content.decode()
