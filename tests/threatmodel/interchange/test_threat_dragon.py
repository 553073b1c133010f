"""Threat Dragon v2 import: a small hand-written model, with every guess in the report."""

from __future__ import annotations

import pytest

from threatmodel.models import ThreatModel, ThreatModelVersion

pytestmark = pytest.mark.django_db


def _node(cell_id, shape, kind, name, x, y, threats=()):
    return {
        "id": cell_id,
        "shape": shape,
        "position": {"x": x, "y": y},
        "size": {"width": 100, "height": 60},
        "data": {"type": kind, "name": name, "description": "", "threats": list(threats)},
    }


def _flow(cell_id, name, source, target, threats=(), **flags):
    return {
        "id": cell_id,
        "shape": "flow",
        "source": {"cell": source},
        "target": {"cell": target},
        "data": {"type": "tm.Flow", "name": name, "threats": list(threats), **flags},
    }


def _box(cell_id, name, x, y, width, height):
    return {
        "id": cell_id,
        "shape": "trust-boundary-box",
        "position": {"x": x, "y": y},
        "size": {"width": width, "height": height},
        "data": {"type": "tm.BoundaryBox", "name": name},
    }


SPOOFING = {
    "title": "Stolen API key",
    "status": "Open",
    "severity": "High",
    "type": "Spoofing",
    "description": "A leaked key lets anyone query the model.",
    "mitigation": "Rotate keys monthly and bind them to client certificates.",
}
POISONING = {
    "title": "Poisoned training batch",
    "status": "Mitigated",
    "severity": "Medium",
    "type": "Tampering",
    "description": "Label flipping in the nightly batch.",
    "mitigation": "Spectral-signature screening before training.",
}
SNIFFING = {"title": "Sniffed features", "status": "NotApplicable", "severity": "Low", "type": "Information disclosure"}

MODEL = {
    "version": "2.2.0",
    "summary": {"title": "Spam filter (Threat Dragon)", "owner": "sec", "description": "", "id": 0},
    "detail": {
        "contributors": [],
        "diagrams": [
            {
                "id": 0,
                "title": "Main",
                "diagramType": "STRIDE",
                "cells": [
                    _box("b-cloud", "Cloud account", 0, 0, 700, 400),
                    _box("b-training", "Training enclave", 350, 0, 350, 200),
                    _node("p-api", "process", "tm.Process", "Inference API", 50, 50, [SPOOFING]),
                    _node("p-train", "process", "tm.Process", "Nightly training job", 400, 50, [POISONING]),
                    _node("p-misc", "process", "tm.Process", "Orchestrator", 50, 250),
                    _node("s-data", "store", "tm.Store", "Labelled SMS bucket", 400, 250),
                    _node("a-user", "actor", "tm.Actor", "Mobile customer", 800, 250),
                    _flow(
                        "f1",
                        "SMS to classify",
                        "a-user",
                        "p-api",
                        isPublicNetwork=True,
                        isEncrypted=True,
                        protocol="HTTPS",
                    ),
                    _flow("f2", "Training batch", "s-data", "p-train", [SNIFFING], isEncrypted=True, protocol="S3"),
                    _flow("f3", "Schedule", "p-misc", "p-train"),
                    _flow("f4", "Dangling", "p-api", None),
                    {"id": "t1", "shape": "td-text-block", "data": {"type": "tm.Text", "name": "note"}},
                ],
            }
        ],
    },
}


def test_a_threat_dragon_model_is_imported_with_its_guesses_reported(api, teammate, system):
    response = api(teammate).post(
        f"/api/systems/{system.id}/threat-models/import/", {"format": "threat-dragon", "document": MODEL}, format="json"
    )
    assert response.status_code == 201, response.json()
    report = response.json()
    assert report["imported"] == {
        "trust_boundaries": 2,
        "components": 5,
        "data_flows": 3,
        "threats": 3,
        "controls": 2,
    }
    version = ThreatModelVersion.objects.get(pk=report["version"])
    assert version.threat_model.title == "Spam filter (Threat Dragon)"
    components = {c.name: c for c in version.components.select_related("boundary")}
    assert {name: c.component_type for name, c in components.items()} == {
        "Inference API": "serving_api",
        "Nightly training job": "training_pipeline",
        "Orchestrator": "serving_api",
        "Labelled SMS bucket": "data_source",
        "Mobile customer": "client",
    }
    # The training job sits in both boxes: the smaller one wins; the actor is outside both.
    assert components["Nightly training job"].boundary.name == "Training enclave"
    assert components["Inference API"].boundary.name == "Cloud account"
    assert components["Mobile customer"].boundary is None

    guesses = {g["path"]: g for g in report["guesses"]}
    cells = "detail.diagrams[0].cells"
    assert "mentions 'training'" in guesses[f"{cells}[3]"]["reason"]
    assert "default 'serving_api'" in guesses[f"{cells}[4]"]["reason"]
    assert guesses[f"{cells}[3]"]["reason"].startswith("tm.Process")
    assert "smallest" in next(g["reason"] for g in report["guesses"] if g["value"] == "b-training")
    assert sum("authentication" in g["reason"] for g in report["guesses"]) == 3

    flows = {f.data: f for f in version.dataflows.all()}
    assert flows["SMS to classify"].protocol == "HTTPS" and flows["SMS to classify"].authenticated is False
    assert flows["Training batch"].authenticated is True

    threats = {t.title: t for t in version.threats.all()}
    stolen = threats["Stolen API key"]
    assert (stolen.stride, stolen.likelihood, stolen.impact, stolen.status) == ("spoofing", 4, 4, "accepted")
    assert stolen.component == components["Inference API"]
    sniffed = threats["Sniffed features"]
    assert sniffed.flow == flows["Training batch"] and sniffed.status == "not_applicable" and sniffed.justification
    controls = {c.name: c for c in version.controls.prefetch_related("threats")}
    assert controls["Mitigation: Stolen API key"].status == "planned"
    assert controls["Mitigation: Poisoned training batch"].status == "implemented"
    assert list(controls["Mitigation: Stolen API key"].threats.all()) == [stolen]

    unmapped = {u["path"]: u["reason"] for u in report["unmapped"]}
    assert "Dangling" in unmapped[f"{cells}[10].target"]
    assert "tm.Text" in unmapped[f"{cells}[11]"]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"version": "1.6.1", "detail": {"diagrams": [{"diagramJson": {"cells": []}}]}}, "Threat Dragon v1"),
        ({"version": "2.2.0", "summary": {}, "detail": {}}, "detail.diagrams: must be a list"),
        ({"otmVersion": "0.2.0"}, "version: None is not a Threat Dragon 2 model version"),
        ({"version": "2.0", "summary": {}, "detail": {"diagrams": [{"cells": [{"no": "id"}]}]}}, "cells[0]"),
    ],
)
def test_a_document_that_is_not_a_threat_dragon_model_is_a_400(api, teammate, system, document, expected):
    response = api(teammate).post(
        f"/api/systems/{system.id}/threat-models/import/",
        {"format": "threat-dragon", "document": document},
        format="json",
    )
    assert response.status_code == 400
    assert any(expected in m for m in response.json()["error"]["fields"]["document"]), response.json()
    assert not ThreatModel.objects.filter(system=system).exists()
