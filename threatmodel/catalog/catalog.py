"""The STRIDE-for-ML threat catalog: threat templates per element type, validated against ATLAS.

The catalog is data (``data/stride_ml.yaml``). Each entry is a threat template: a
STRIDE category, the element types it applies to, its MITRE ATLAS techniques and
mitigations, its OWASP ML Top 10 items, and a default likelihood and impact.
Suggestions follow STRIDE-per-element: a component gets the templates listed for
its type; a data flow gets the flow templates whose condition it meets.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from threatmodel.catalog._yaml import read_yaml
from threatmodel.catalog.atlas import DATA_DIR, AtlasRelease, shipped_atlas

SHIPPED_CATALOG_PATH = DATA_DIR / "stride_ml.yaml"
MAX_CATALOG_BYTES = 2 * 1024 * 1024

STRIDE_CATEGORIES: dict[str, str] = {
    "spoofing": "Spoofing",
    "tampering": "Tampering",
    "repudiation": "Repudiation",
    "information_disclosure": "Information disclosure",
    "denial_of_service": "Denial of service",
    "elevation_of_privilege": "Elevation of privilege",
}

COMPONENT_TYPES: dict[str, str] = {
    "data_source": "Data source",
    "ingestion_pipeline": "Ingestion pipeline",
    "feature_store": "Feature store",
    "training_pipeline": "Training pipeline",
    "model_artifact": "Model artifact",
    "model_registry": "Model registry",
    "serving_api": "Serving API",
    "client": "Client",
    "third_party_asset": "Third-party model or dataset",
    "human_reviewer": "Human reviewer",
}

DATA_FLOW = "data_flow"

# Every element a threat can apply to: the component types plus data flows.
ELEMENT_TYPES: dict[str, str] = {**COMPONENT_TYPES, DATA_FLOW: "Data flow"}

# STRIDE-per-element: a data flow can be tampered with, read, or blocked, and nothing else.
FLOW_STRIDE_CATEGORIES: frozenset[str] = frozenset({"tampering", "information_disclosure", "denial_of_service"})

FLOW_CONDITIONS: dict[str, str] = {
    "unauthenticated": "The flow's sender or receiver is not authenticated",
    "crosses_trust_boundary": "The flow crosses a trust boundary",
}

# OWASP Machine Learning Security Top 10 (2023): IDs and names only.
OWASP_ML_TOP10: dict[str, str] = {
    "ML01": "Input Manipulation Attack",
    "ML02": "Data Poisoning Attack",
    "ML03": "Model Inversion Attack",
    "ML04": "Membership Inference Attack",
    "ML05": "Model Theft",
    "ML06": "AI Supply Chain Attacks",
    "ML07": "Transfer Learning Attack",
    "ML08": "Model Skewing",
    "ML09": "Output Integrity Attack",
    "ML10": "Model Poisoning",
}

# Garrison evaluations that can produce evidence for or against a threat.
EVALUATION_KINDS: dict[str, str] = {
    "robustness": "Adversarial robustness",
    "adversarial_training": "Adversarial training",
    "extraction": "Model extraction",
    "poisoning_detection": "Poisoning detection",
    "backdoor_simulation": "Backdoor simulation",
    "model_scan": "Model-file scan",
}

_KEY = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_OWASP_ID = re.compile(r"ML\d{2}")
_FIELDS = frozenset(
    {
        "key",
        "title",
        "description",
        "stride",
        "applies_to",
        "atlas_techniques",
        "owasp_ml",
        "likelihood",
        "impact",
        "mitigations",
        "evaluation_kind",
    }
)
_OPTIONAL_FIELDS = frozenset({"evaluation_kind"})

# report(field, message): records one validation problem for the threat being parsed.
_Report = Callable[[str, str], None]


class CatalogError(ValueError):
    """The threat catalog is invalid; ``errors`` lists every problem found, one per line of the message."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("Invalid threat catalog:\n" + "\n".join(f"- {e}" for e in self.errors))


@dataclass(frozen=True)
class ThreatTemplate:
    """One catalog threat, suggested for every element of the types in ``applies_to``."""

    key: str
    title: str
    description: str
    stride: str
    applies_to: tuple[str, ...]
    atlas_techniques: tuple[str, ...]
    owasp_ml: tuple[str, ...]
    likelihood: int
    impact: int
    mitigations: tuple[str, ...]
    evaluation_kind: str | None = None
    # Conditions under which the template applies to a data flow (any one suffices);
    # empty means every flow, when ``data_flow`` is in ``applies_to``.
    flow_conditions: frozenset[str] = field(default_factory=frozenset)

    @property
    def risk(self) -> int:
        """Default risk score: likelihood times impact (1-25)."""
        return self.likelihood * self.impact

    def applies_to_component(self, component_type: str) -> bool:
        """Whether the template is suggested for a component of this type."""
        return component_type in self.applies_to and component_type != DATA_FLOW

    def applies_to_flow(self, *, authenticated: bool, crosses_trust_boundary: bool) -> bool:
        """Whether the template is suggested for a data flow with these properties."""
        if DATA_FLOW not in self.applies_to:
            return False
        if not self.flow_conditions:
            return True
        holds = {"unauthenticated": not authenticated, "crosses_trust_boundary": crosses_trust_boundary}
        return any(holds[condition] for condition in self.flow_conditions)


@dataclass(frozen=True)
class CatalogStats:
    """Counts for documentation and dashboards."""

    threats: int
    per_stride: dict[str, int]
    per_element_type: dict[str, int]
    per_owasp: dict[str, int]
    atlas_techniques: frozenset[str]
    mitigations: frozenset[str]


def _stride_order(template: ThreatTemplate) -> tuple[int, int, str]:
    return (list(STRIDE_CATEGORIES).index(template.stride), -template.risk, template.key)


@dataclass(frozen=True)
class Catalog:
    """A validated set of threat templates and the ATLAS release it was checked against."""

    version: str
    atlas_version: str
    threats: tuple[ThreatTemplate, ...]

    def __iter__(self) -> Iterator[ThreatTemplate]:
        return iter(self.threats)

    def __len__(self) -> int:
        return len(self.threats)

    def get(self, key: str) -> ThreatTemplate:
        """The template with this key (``KeyError`` if there is none)."""
        for template in self.threats:
            if template.key == key:
                return template
        raise KeyError(key)

    def suggest(self, component_type: str) -> list[ThreatTemplate]:
        """Templates for a component type, by STRIDE category then highest default risk."""
        if component_type == DATA_FLOW:
            raise ValueError("Data flows have conditions; call suggest_for_flow(authenticated=..., ...) instead.")
        if component_type not in COMPONENT_TYPES:
            raise ValueError(
                f"Unknown component type {component_type!r}; expected one of {', '.join(COMPONENT_TYPES)}."
            )
        return sorted((t for t in self.threats if t.applies_to_component(component_type)), key=_stride_order)

    def suggest_for_flow(self, *, authenticated: bool, crosses_trust_boundary: bool) -> list[ThreatTemplate]:
        """Templates for a data flow, by STRIDE category then highest default risk."""
        return sorted(
            (
                t
                for t in self.threats
                if t.applies_to_flow(authenticated=authenticated, crosses_trust_boundary=crosses_trust_boundary)
            ),
            key=_stride_order,
        )

    def stats(self) -> CatalogStats:
        """Threat counts per STRIDE category, element type and OWASP item, and the ATLAS IDs covered."""
        per_stride = Counter(t.stride for t in self.threats)
        per_element = Counter(e for t in self.threats for e in t.applies_to)
        per_owasp = Counter(o for t in self.threats for o in t.owasp_ml)
        return CatalogStats(
            threats=len(self.threats),
            per_stride={s: per_stride[s] for s in STRIDE_CATEGORIES},
            per_element_type={e: per_element[e] for e in ELEMENT_TYPES},
            per_owasp={o: per_owasp[o] for o in OWASP_ML_TOP10},
            atlas_techniques=frozenset(x for t in self.threats for x in t.atlas_techniques),
            mitigations=frozenset(x for t in self.threats for x in t.mitigations),
        )


def load_catalog(path: str | Path | None = None, *, atlas: AtlasRelease | None = None) -> Catalog:
    """Load and validate a catalog (default: the shipped one) against an ATLAS release (default: shipped)."""
    source = Path(path) if path is not None else SHIPPED_CATALOG_PATH
    data = read_yaml(source, max_bytes=MAX_CATALOG_BYTES, error=_single_error, what="Threat catalog")
    return parse_catalog(data, atlas=atlas if atlas is not None else shipped_atlas())


def _single_error(message: str) -> CatalogError:
    return CatalogError([message])


def parse_catalog(data: Any, *, atlas: AtlasRelease) -> Catalog:
    """Build a ``Catalog`` from already-parsed YAML, or raise ``CatalogError`` listing every problem."""
    if not isinstance(data, Mapping) or not isinstance(data.get("threats"), list):
        raise CatalogError(["The catalog must be a mapping with a 'threats' list."])
    errors: list[str] = []
    threats: list[ThreatTemplate] = []
    seen: set[str] = set()
    for index, entry in enumerate(data["threats"]):
        template = _parse_threat(entry, index, atlas, errors)
        if template is None:
            continue
        if template.key in seen:
            errors.append(f"threat {template.key!r}, field 'key': duplicate key; keys must be unique.")
            continue
        seen.add(template.key)
        threats.append(template)
    if errors:
        raise CatalogError(errors)
    return Catalog(version=str(data.get("version", "")), atlas_version=atlas.version, threats=tuple(threats))


def _parse_threat(entry: Any, index: int, atlas: AtlasRelease, errors: list[str]) -> ThreatTemplate | None:
    if not isinstance(entry, Mapping):
        errors.append(f"threats[{index}]: each threat must be a mapping of fields.")
        return None
    key = entry.get("key")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        errors.append(f"threats[{index}], field 'key': {key!r} is not a lowercase slug like 'model-extraction'.")
        return None
    before = len(errors)

    def error(field_name: str, message: str) -> None:
        errors.append(f"threat {key!r}, field '{field_name}': {message}")

    for name in sorted(_FIELDS - _OPTIONAL_FIELDS - entry.keys()):
        error(name, "is missing.")
    for name in sorted(entry.keys() - _FIELDS):
        error(name, f"is not a catalog field; expected one of {', '.join(sorted(_FIELDS))}.")

    for name in ("title", "description"):
        if name in entry and (not isinstance(entry[name], str) or not entry[name].strip()):
            error(name, "must be non-empty text.")

    stride = entry.get("stride")
    if "stride" in entry and (not isinstance(stride, str) or stride not in STRIDE_CATEGORIES):
        error("stride", f"{stride!r} is not a STRIDE category; expected one of {', '.join(STRIDE_CATEGORIES)}.")

    applies_to, flow_conditions = (
        _parse_applies_to(entry.get("applies_to"), error) if "applies_to" in entry else ((), frozenset())
    )
    if DATA_FLOW in applies_to and stride in STRIDE_CATEGORIES and stride not in FLOW_STRIDE_CATEGORIES:
        error("applies_to", f"data flows only take {', '.join(sorted(FLOW_STRIDE_CATEGORIES))} threats, not {stride}.")

    techniques = _id_list(entry, "atlas_techniques", atlas.techniques, "ATLAS technique", error)
    mitigations = _id_list(entry, "mitigations", atlas.mitigations, "ATLAS mitigation", error)
    owasp = _owasp_list(entry.get("owasp_ml"), error) if "owasp_ml" in entry else ()

    for name in ("likelihood", "impact"):
        value = entry.get(name)
        if name in entry and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5):
            error(name, f"must be an integer from 1 to 5, got {value!r}.")

    evaluation_kind = entry.get("evaluation_kind")
    if evaluation_kind is not None and (
        not isinstance(evaluation_kind, str) or evaluation_kind not in EVALUATION_KINDS
    ):
        error(
            "evaluation_kind",
            f"{evaluation_kind!r} is not a Garrison evaluation; expected one of {', '.join(EVALUATION_KINDS)}.",
        )

    if len(errors) > before:
        return None
    return ThreatTemplate(
        key=key,
        title=entry["title"].strip(),
        description=" ".join(entry["description"].split()),
        stride=stride,
        applies_to=applies_to,
        atlas_techniques=techniques,
        owasp_ml=owasp,
        likelihood=entry["likelihood"],
        impact=entry["impact"],
        mitigations=mitigations,
        evaluation_kind=evaluation_kind,
        flow_conditions=flow_conditions,
    )


def _parse_applies_to(value: Any, error: _Report) -> tuple[tuple[str, ...], frozenset[str]]:
    """Parse ``[serving_api, {data_flow: {when: [unauthenticated]}}]`` into element types and flow conditions."""
    if not isinstance(value, list) or not value:
        error("applies_to", "must be a non-empty list of element types.")
        return (), frozenset()
    elements: list[str] = []
    conditions: set[str] = set()
    for item in value:
        if isinstance(item, Mapping) and list(item) == [DATA_FLOW]:
            options = item[DATA_FLOW] or {}
            when = options.get("when", []) if isinstance(options, Mapping) else None
            when = [when] if isinstance(when, str) else when
            if (
                not isinstance(when, list)
                or not all(isinstance(c, str) for c in when)
                or (isinstance(options, Mapping) and options.keys() - {"when"})
            ):
                error("applies_to", "write a data-flow entry as {data_flow: {when: [condition, ...]}}.")
                continue
            unknown = [c for c in when if c not in FLOW_CONDITIONS]
            if unknown:
                error(
                    "applies_to",
                    f"unknown flow condition {', '.join(map(repr, unknown))}; "
                    f"expected one of {', '.join(FLOW_CONDITIONS)}.",
                )
            conditions.update(c for c in when if c in FLOW_CONDITIONS)
            item = DATA_FLOW
        if not isinstance(item, str) or item not in ELEMENT_TYPES:
            error("applies_to", f"unknown component type {item!r}; expected one of {', '.join(ELEMENT_TYPES)}.")
        elif item in elements:
            error("applies_to", f"{item!r} is listed twice.")
        else:
            elements.append(item)
    return tuple(elements), frozenset(conditions)


def _id_list(
    entry: Mapping[str, Any], name: str, known: Mapping[str, Any], what: str, error: _Report
) -> tuple[str, ...]:
    if name not in entry:
        return ()
    values = entry[name]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        error(name, f"must be a non-empty list of {what} IDs.")
        return ()
    unknown = [v for v in values if v not in known]
    if unknown:
        error(name, f"unknown {what} ID(s) {', '.join(unknown)}; use IDs that exist in the ATLAS release.")
    if len(set(values)) != len(values):
        error(name, "lists an ID more than once.")
    return tuple(values)


def _owasp_list(value: Any, error: _Report) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        error("owasp_ml", "must be a list of OWASP ML Top 10 IDs such as ML01 ([] when none fits).")
        return ()
    for v in values:
        if not _OWASP_ID.fullmatch(v):
            error("owasp_ml", f"{v!r} is not an OWASP ML Top 10 ID; write it as ML01 to ML10.")
        elif v not in OWASP_ML_TOP10:
            error("owasp_ml", f"{v!r} is not in the OWASP ML Top 10 (ML01 to ML10).")
    if len(set(values)) != len(values):
        error("owasp_ml", "lists an ID more than once.")
    return tuple(values)
