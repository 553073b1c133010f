"""Adding a component or flow suggests the catalog's threats for it (STRIDE-per-element)."""

from __future__ import annotations

import pytest

from threatmodel import services
from threatmodel.catalog import COMPONENT_TYPES
from threatmodel.models import ThreatStatus

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("component_type", sorted(COMPONENT_TYPES))
def test_each_component_type_gets_suggested_threats(owner, draft, component_type):
    component = services.component_create(
        actor=owner, version=draft, name=component_type, component_type=component_type
    )
    threats = list(component.threats.all())
    assert len(threats) >= 2
    assert all(t.status == ThreatStatus.SUGGESTED and t.catalog_key for t in threats)
    assert all(t.atlas_techniques for t in threats)


def test_serving_api_suggestions_cover_evasion_extraction_and_inference(owner, draft):
    api = services.component_create(actor=owner, version=draft, name="API", component_type="serving_api")
    titles = " ".join(api.threats.values_list("title", flat=True)).lower()
    for word in ("evasion", "extraction", "membership"):
        assert word in titles


def test_unauthenticated_boundary_crossing_flows_get_more_threats(owner, draft):
    zone = services.boundary_create(actor=owner, version=draft, name="Internet")
    a = services.component_create(
        actor=owner, version=draft, name="A", component_type="client", boundary=zone, suggest=False
    )
    b = services.component_create(actor=owner, version=draft, name="B", component_type="serving_api", suggest=False)
    c = services.component_create(actor=owner, version=draft, name="C", component_type="model_registry", suggest=False)
    exposed = services.flow_create(actor=owner, version=draft, source=a, target=b, data="x", authenticated=False)
    internal = services.flow_create(actor=owner, version=draft, source=c, target=b, data="y", authenticated=True)
    assert exposed.threats.count() > internal.threats.count() >= 1


def test_suggestions_can_be_skipped(owner, draft):
    component = services.component_create(
        actor=owner, version=draft, name="Quiet", component_type="client", suggest=False
    )
    assert not component.threats.exists()
