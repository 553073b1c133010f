"""STRIDE-for-ML threat catalog and MITRE ATLAS loader: pure Python, no Django imports.

``load_catalog()`` returns the shipped catalog validated against the shipped ATLAS
release; ``Catalog.suggest(component_type)`` and ``Catalog.suggest_for_flow(...)``
give the threat templates for one element of a system (STRIDE-per-element).
"""

from __future__ import annotations

from threatmodel.catalog.atlas import (
    MAX_ATLAS_BYTES,
    SHIPPED_ATLAS_PATH,
    AtlasFormatError,
    AtlasMitigation,
    AtlasRelease,
    AtlasTactic,
    AtlasTechnique,
    load_atlas,
    parse_atlas,
    shipped_atlas,
)
from threatmodel.catalog.catalog import (
    COMPONENT_TYPES,
    DATA_FLOW,
    ELEMENT_TYPES,
    EVALUATION_KINDS,
    FLOW_CONDITIONS,
    FLOW_STRIDE_CATEGORIES,
    OWASP_ML_TOP10,
    SHIPPED_CATALOG_PATH,
    STRIDE_CATEGORIES,
    Catalog,
    CatalogError,
    CatalogStats,
    ThreatTemplate,
    load_catalog,
    parse_catalog,
)
from threatmodel.catalog.names import ReleaseDiff, Rename, diff_releases

__all__ = [
    "COMPONENT_TYPES",
    "DATA_FLOW",
    "ELEMENT_TYPES",
    "EVALUATION_KINDS",
    "FLOW_CONDITIONS",
    "FLOW_STRIDE_CATEGORIES",
    "MAX_ATLAS_BYTES",
    "OWASP_ML_TOP10",
    "SHIPPED_ATLAS_PATH",
    "SHIPPED_CATALOG_PATH",
    "STRIDE_CATEGORIES",
    "AtlasFormatError",
    "AtlasMitigation",
    "AtlasRelease",
    "AtlasTactic",
    "AtlasTechnique",
    "Catalog",
    "CatalogError",
    "CatalogStats",
    "ReleaseDiff",
    "Rename",
    "ThreatTemplate",
    "diff_releases",
    "load_atlas",
    "load_catalog",
    "parse_atlas",
    "parse_catalog",
    "shipped_atlas",
]
