"""Writes to the threatmodel app; each one validated and audited in one transaction."""

from __future__ import annotations

from threatmodel.services.atlas import atlas_release_load
from threatmodel.services.elements import (
    boundary_create,
    boundary_delete,
    boundary_update,
    component_create,
    component_delete,
    component_update,
    control_create,
    control_delete,
    control_set_evidence_state,
    control_update,
    flow_create,
    flow_delete,
    flow_update,
    threat_accept_risk,
    threat_create,
    threat_decide,
    threat_delete,
    threat_update,
)
from threatmodel.services.systems import system_create, system_delete, system_update
from threatmodel.services.versions import (
    threat_model_create,
    threat_model_delete,
    threat_model_update,
    version_approve,
    version_send_back,
    version_start_draft,
    version_submit,
)

__all__ = [
    "atlas_release_load",
    "boundary_create",
    "boundary_delete",
    "boundary_update",
    "component_create",
    "component_delete",
    "component_update",
    "control_create",
    "control_delete",
    "control_set_evidence_state",
    "control_update",
    "flow_create",
    "flow_delete",
    "flow_update",
    "system_create",
    "system_delete",
    "system_update",
    "threat_accept_risk",
    "threat_create",
    "threat_decide",
    "threat_delete",
    "threat_model_create",
    "threat_model_delete",
    "threat_model_update",
    "threat_update",
    "version_approve",
    "version_send_back",
    "version_start_draft",
    "version_submit",
]
