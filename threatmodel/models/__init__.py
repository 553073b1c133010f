"""The threatmodel app's models: systems, ATLAS reference data, threat models and their parts."""

from __future__ import annotations

from threatmodel.models.atlas import AtlasEntry, AtlasKind, AtlasName, AtlasRelease
from threatmodel.models.systems import CriticalityTier, DataClassification, LifecycleStage, System, validate_tags
from threatmodel.models.threat_models import (
    Component,
    Control,
    ControlStatus,
    ControlType,
    DataFlow,
    EvidenceState,
    Threat,
    ThreatModel,
    ThreatModelVersion,
    ThreatStatus,
    TrustBoundary,
    VersionStatus,
)

__all__ = [
    "AtlasEntry",
    "AtlasKind",
    "AtlasName",
    "AtlasRelease",
    "Component",
    "Control",
    "ControlStatus",
    "ControlType",
    "CriticalityTier",
    "DataClassification",
    "DataFlow",
    "EvidenceState",
    "LifecycleStage",
    "System",
    "Threat",
    "ThreatModel",
    "ThreatModelVersion",
    "ThreatStatus",
    "TrustBoundary",
    "VersionStatus",
    "validate_tags",
]
