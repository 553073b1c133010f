"""Reads of the threatmodel app, scoped to the principal's teams."""

from __future__ import annotations

from threatmodel.selectors.atlas import atlas_entry_list, atlas_names, atlas_unknown_ids
from threatmodel.selectors.systems import system_get, system_get_by_id, system_list
from threatmodel.selectors.threat_models import (
    RegisterRow,
    VersionContent,
    approved_versions,
    build_version_content,
    element_get,
    threat_model_get,
    threat_model_list,
    version_content,
    version_get,
)

__all__ = [
    "RegisterRow",
    "VersionContent",
    "approved_versions",
    "build_version_content",
    "atlas_entry_list",
    "atlas_names",
    "atlas_unknown_ids",
    "element_get",
    "system_get",
    "system_get_by_id",
    "system_list",
    "threat_model_get",
    "threat_model_list",
    "version_content",
    "version_get",
]
