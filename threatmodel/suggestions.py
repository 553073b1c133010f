"""Threat suggestions from the STRIDE-for-ML catalog (STRIDE-per-element)."""

from __future__ import annotations

from functools import lru_cache

from threatmodel.catalog import Catalog, ThreatTemplate, load_catalog
from threatmodel.models import Component, DataFlow, Threat, ThreatStatus


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    """The shipped catalog, validated against the shipped ATLAS release (loaded once per process)."""
    return load_catalog()


def _threat_from(template: ThreatTemplate, **element: object) -> Threat:
    return Threat(
        catalog_key=template.key,
        title=template.title,
        description=template.description.strip(),
        stride=template.stride,
        atlas_techniques=list(template.atlas_techniques),
        owasp_ml=list(template.owasp_ml),
        suggested_mitigations=list(template.mitigations),
        evaluation_kind=template.evaluation_kind or "",
        likelihood=template.likelihood,
        impact=template.impact,
        status=ThreatStatus.SUGGESTED,
        **element,
    )


def suggest_for_component(component: Component) -> list[Threat]:
    """Create the catalog's suggested threats for a component, skipping ones it already has."""
    existing = set(component.threats.values_list("catalog_key", flat=True))
    new = [
        _threat_from(t, version=component.version, component=component)
        for t in catalog().suggest(component.component_type)
        if t.key not in existing
    ]
    return Threat.objects.bulk_create(new)


def suggest_for_flow(flow: DataFlow) -> list[Threat]:
    """Create the catalog's suggested threats for a data flow, given its authentication and trust crossing."""
    existing = set(flow.threats.values_list("catalog_key", flat=True))
    templates = catalog().suggest_for_flow(
        authenticated=flow.authenticated, crosses_trust_boundary=flow.crosses_trust_boundary
    )
    new = [_threat_from(t, version=flow.version, flow=flow) for t in templates if t.key not in existing]
    return Threat.objects.bulk_create(new)
