"""Fixtures for threat-model tests: a draft version with a small spam-filter model."""

from __future__ import annotations

import pytest

from threatmodel import services


@pytest.fixture
def threat_model(owner, system):
    """A threat model of ``system`` with an empty draft v1."""
    return services.threat_model_create(actor=owner, system=system, title="Fraud scorer threat model")


@pytest.fixture
def draft(threat_model):
    """Version 1, a draft."""
    return threat_model.versions.get()


@pytest.fixture
def modelled(owner, draft):
    """The draft with two boundaries, three components and two flows (suggestions included)."""
    internet = services.boundary_create(actor=owner, version=draft, name="Internet")
    vpc = services.boundary_create(actor=owner, version=draft, name="Serving VPC")
    client = services.component_create(
        actor=owner, version=draft, name="Mail clients", component_type="client", boundary=internet
    )
    api = services.component_create(
        actor=owner, version=draft, name="Prediction API", component_type="serving_api", boundary=vpc
    )
    registry = services.component_create(
        actor=owner, version=draft, name="Model registry", component_type="model_registry", boundary=vpc
    )
    services.flow_create(
        actor=owner, version=draft, source=client, target=api, data="SMS text", protocol="HTTPS", authenticated=False
    )
    services.flow_create(actor=owner, version=draft, source=registry, target=api, data="model weights")
    return draft
