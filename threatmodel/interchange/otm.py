"""Open Threat Model (OTM 0.2.0, IriusRisk's open format): export a version, read a document into a plan.

Mapping (Garrison -> OTM; the reader reverses it):

- threat model -> ``project`` (name = title, id, description = system description)
- trust boundary -> ``trustZones[]`` (id = uid); components outside any boundary sit in
  a default zone marked ``attributes["garrison.defaultZone"] = true``
- component -> ``components[]`` (``parent.trustZone``, ``type`` and
  ``attributes["garrison.componentType"]`` = component type, ``threats[]`` instances
  with ``state`` and ``mitigations[]`` references)
- data flow -> ``dataflows[]`` (``source``/``destination``, name and ``attributes``
  ``data``/``protocol``/``authenticated``, ``threats[]`` instances)
- threat -> ``threats[]`` (``categories`` = [STRIDE category], ``risk`` likelihood and
  impact 1-5 -> 0/25/50/75/100, ``attributes`` ``atlas_techniques``/``owasp_ml``/
  ``catalog_key``/``status``/``justification``; ATLAS and OWASP IDs also as ``tags``)
- control -> ``mitigations[]`` (``riskReduction``, ``attributes`` ``type``/``status``/
  ``atlas_mitigations``/``owner`` (username)/``due_date``)
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from django.utils import timezone

from threatmodel.catalog import COMPONENT_TYPES, STRIDE_CATEGORIES
from threatmodel.interchange.guess import guess_component_type, guess_stride
from threatmodel.interchange.plan import (
    ImportReport,
    InterchangeError,
    Plan,
    PlannedBoundary,
    PlannedComponent,
    PlannedControl,
    PlannedFlow,
    PlannedThreat,
    clip,
)
from threatmodel.models import ControlStatus, ControlType, ThreatModelVersion, ThreatStatus

OTM_VERSION = "0.2.0"
DEFAULT_ZONE_ID = "garrison-outside-trust-boundaries"
UNRATED_TRUST = 50  # Garrison does not rate trust zones; OTM requires a rating.
THREAT_ATTRIBUTES = {"atlas_techniques", "owasp_ml", "catalog_key", "status", "justification"}
MITIGATION_ATTRIBUTES = {"type", "status", "atlas_mitigations", "owner", "due_date"}
FLOW_ATTRIBUTES = {"data", "protocol", "authenticated"}


def score_to_otm(value: int) -> int:
    """A 1-5 score on OTM's 0-100 scale (1 -> 0, 3 -> 50, 5 -> 100)."""
    return (value - 1) * 25


def score_from_otm(value: float) -> int:
    """An OTM 0-100 score on Garrison's 1-5 scale (the nearest of 0/25/50/75/100)."""
    return min(5, max(1, round(float(value) / 25) + 1))


# --- Export ------------------------------------------------------------------------------------------


def otm_filename(version: ThreatModelVersion) -> str:
    """``<system-slug>-<threat-model-id>-v<number>.otm.json``, for downloads."""
    return f"{version.threat_model.system.slug}-{version.threat_model_id}-v{version.number}.otm.json"


def _threat_state(threat: Any, controls: list[Any]) -> str:
    if threat.status == ThreatStatus.NOT_APPLICABLE:
        return "NOT_APPLICABLE"
    if threat.status == ThreatStatus.ACCEPTED and any(c.is_effective for c in controls):
        return "MITIGATED"
    return "EXPOSED"


def _risk_reduction(control: Any) -> int:
    # An effective control lowers one 1-5 score by 1, or 2 when verified (threatmodel.risk).
    if not control.is_effective:
        return 0
    return 40 if control.is_verified else 20


def export_otm(version: ThreatModelVersion) -> dict[str, Any]:
    """The version as an OTM 0.2.0 document (a dict ready for ``json.dumps``); the caller checks access."""
    threat_model = version.threat_model
    system = threat_model.system
    boundaries = list(version.trustboundarys.all())
    components = list(version.components.select_related("boundary"))
    flows = list(version.dataflows.select_related("source", "target"))
    threats = list(version.threats.all())
    controls = list(version.controls.select_related("owner").prefetch_related("threats"))
    controls_of: dict[int, list[Any]] = {}
    for control in controls:
        for threat in control.threats.all():
            controls_of.setdefault(threat.pk, []).append(control)

    def instances(**element: Any) -> list[dict[str, Any]]:
        return [
            {
                "threat": str(t.uid),
                "state": _threat_state(t, controls_of.get(t.pk, [])),
                "mitigations": [
                    {"mitigation": str(c.uid), "state": "IMPLEMENTED" if c.is_effective else "REQUIRED"}
                    for c in sorted(controls_of.get(t.pk, []), key=lambda c: c.name)
                ],
            }
            for t in threats
            if all(getattr(t, f"{name}_id") == value.pk for name, value in element.items())
        ]

    zones = [
        {
            "id": str(b.uid),
            "name": b.name,
            "type": "garrison-trust-boundary",
            "description": b.description,
            "risk": {"trustRating": UNRATED_TRUST},
        }
        for b in boundaries
    ]
    if any(c.boundary_id is None for c in components):
        zones.append(
            {
                "id": DEFAULT_ZONE_ID,
                "name": "Outside any trust boundary",
                "type": "garrison-default-zone",
                "description": "Components that sit in no trust boundary in Garrison.",
                "risk": {"trustRating": UNRATED_TRUST},
                "attributes": {"garrison.defaultZone": True},
            }
        )
    return {
        "otmVersion": OTM_VERSION,
        "project": {
            "name": threat_model.title,
            "id": f"garrison-threat-model-{threat_model.pk}",
            "description": system.description,
            "owner": version.author.get_username() if version.author else None,
            "tags": list(system.tags),
            "attributes": {
                "garrison.system": system.name,
                "garrison.team": system.team.slug,
                "garrison.version": version.number,
                "garrison.versionStatus": version.status,
                "garrison.exportedAt": timezone.now().isoformat(),
            },
        },
        "representations": [],
        "assets": [],
        "trustZones": zones,
        "components": [
            {
                "id": str(c.uid),
                "name": c.name,
                "type": c.component_type,
                "description": c.description,
                "parent": {"trustZone": str(c.boundary.uid) if c.boundary else DEFAULT_ZONE_ID},
                "tags": [c.component_type],
                "attributes": {"garrison.componentType": c.component_type},
                "threats": instances(component=c),
            }
            for c in components
        ],
        "dataflows": [
            {
                "id": str(f.uid),
                "name": f.data,
                "bidirectional": False,
                "source": str(f.source.uid),
                "destination": str(f.target.uid),
                "tags": [f.protocol] if f.protocol else [],
                "attributes": {"data": f.data, "protocol": f.protocol, "authenticated": f.authenticated},
                "threats": instances(flow=f),
            }
            for f in flows
        ],
        "threats": [
            {
                "id": str(t.uid),
                "name": t.title,
                "description": t.description,
                "categories": [STRIDE_CATEGORIES[t.stride]],
                "risk": {"likelihood": score_to_otm(t.likelihood), "impact": score_to_otm(t.impact)},
                "tags": [*t.atlas_techniques, *t.owasp_ml],
                "attributes": {
                    "atlas_techniques": list(t.atlas_techniques),
                    "owasp_ml": list(t.owasp_ml),
                    "catalog_key": t.catalog_key,
                    "status": t.status,
                    "justification": t.justification,
                },
            }
            for t in threats
        ],
        "mitigations": [
            {
                "id": str(c.uid),
                "name": c.name,
                "description": c.description,
                "riskReduction": _risk_reduction(c),
                "attributes": {
                    "type": c.control_type,
                    "status": c.status,
                    "atlas_mitigations": list(c.atlas_mitigations),
                    "owner": c.owner.get_username() if c.owner else None,
                    "due_date": c.due_date.isoformat() if c.due_date else None,
                },
            }
            for c in controls
        ],
    }


# --- Import ---------------------------------------------------------------------------------------------


class _Reader:
    """Walks an OTM document, collecting every structural problem before giving up."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        self.problems: list[dict[str, str]] = []

    def problem(self, path: str, reason: str) -> None:
        self.problems.append({"path": path, "reason": reason})

    def items(self, document: dict[str, Any], key: str, required: tuple[str, ...]) -> list[tuple[str, dict]]:
        """The well-formed entries of a top-level list, with their paths; duplicate ids are problems."""
        value = document.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(key, f"must be a list, not {type(value).__name__}.")
            return []
        entries, seen = [], set()
        for index, entry in enumerate(value):
            path = f"{key}[{index}]"
            if not isinstance(entry, dict):
                self.problem(path, "must be an object.")
                continue
            missing = [name for name in required if not isinstance(entry.get(name), str) or not entry[name].strip()]
            if missing:
                self.problem(path, f"needs the string field(s) {', '.join(missing)}.")
                continue
            if entry["id"] in seen:
                self.problem(f"{path}.id", f"'{entry['id']}' is used by another entry of {key}.")
                continue
            seen.add(entry["id"])
            entries.append((path, entry))
        return entries

    def attributes(self, entry: dict[str, Any], path: str, known: set[str]) -> dict[str, Any]:
        attributes = entry.get("attributes") or {}
        if not isinstance(attributes, dict):
            self.problem(f"{path}.attributes", "must be an object.")
            return {}
        extra = sorted(name for name in attributes if name not in known and not name.startswith("garrison."))
        if extra:
            self.report.not_mapped(f"{path}.attributes", f"Attribute(s) {', '.join(extra)} are not kept.")
        return attributes

    def id_list(self, value: Any, path: str) -> list[str]:
        if value in (None, ""):
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(path, "must be a list of strings.")
            return []
        return [v.strip() for v in value if v.strip()]


def _date(value: Any, path: str, reader: _Reader) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        reader.problem(path, f"'{value}' is not a date; use YYYY-MM-DD.")
        return None


def _stride(threat: dict[str, Any], path: str, report: ImportReport) -> str:
    categories = [c for c in threat.get("categories") or [] if isinstance(c, str)]
    for category in categories:
        key = re.sub(r"[\s-]+", "_", category.strip().lower())
        if key in STRIDE_CATEGORIES:
            return key
    stride, reason = guess_stride(" ".join(categories) or threat.get("name", ""))
    report.guessed(f"{path}.categories", stride, reason)
    return stride


def _component_type(component: dict[str, Any], attributes: dict[str, Any], path: str, report: ImportReport) -> str:
    for candidate in (attributes.get("garrison.componentType"), component.get("type")):
        if candidate in COMPONENT_TYPES:
            return candidate
    component_type, reason = guess_component_type(f"{component.get('type', '')} {component['name']}", "serving_api")
    report.guessed(f"{path}.type", component_type, reason)
    return component_type


def parse_otm(document: Any, report: ImportReport) -> Plan:
    """Read an OTM document into a plan, or raise :class:`InterchangeError` listing every problem."""
    if not isinstance(document, dict):
        raise InterchangeError(
            [{"path": "$", "reason": "An OTM document is a JSON object with otmVersion and project."}]
        )
    reader = _Reader(report)
    version = document.get("otmVersion")
    if not isinstance(version, str) or not re.fullmatch(r"0\.\d+\.\d+", version):
        reader.problem("otmVersion", f"{version!r} is not a supported OTM version; expected e.g. '{OTM_VERSION}'.")
    project = document.get("project")
    if not isinstance(project, dict) or not all(isinstance(project.get(k), str) for k in ("name", "id")):
        reader.problem("project", "must be an object with string 'name' and 'id'.")
        project = {}
    for key in ("representations", "assets"):
        if document.get(key):
            report.not_mapped(key, f"OTM {key} are not imported; Garrison keeps no {key[:-1]} list.")

    plan = Plan(title=clip(project.get("name", ""), 160, "project.name", report))
    zones = reader.items(document, "trustZones", ("id", "name"))
    components = reader.items(document, "components", ("id", "name", "type"))
    flows = reader.items(document, "dataflows", ("id", "name", "source", "destination"))
    threats = {entry["id"]: (path, entry) for path, entry in reader.items(document, "threats", ("id", "name"))}
    mitigations = {entry["id"]: (path, entry) for path, entry in reader.items(document, "mitigations", ("id", "name"))}

    default_zones = set()
    for path, zone in zones:
        if (zone.get("attributes") or {}).get("garrison.defaultZone") is True:
            default_zones.add(zone["id"])
            continue
        if isinstance(zone.get("parent"), dict):
            report.not_mapped(f"{path}.parent", "Trust zones do not nest in Garrison; this one is imported flat.")
        plan.boundaries.append(
            PlannedBoundary(
                key=zone["id"],
                path=path,
                name=clip(zone["name"], 120, f"{path}.name", report),
                description=str(zone.get("description") or ""),
            )
        )
    zone_ids = {z["id"] for _, z in zones}

    parents = {c["id"]: (path, c.get("parent")) for path, c in components}

    def zone_of(component_id: str, seen: frozenset[str] = frozenset()) -> str | None:
        path, parent = parents[component_id]
        if not isinstance(parent, dict) or not (parent.get("trustZone") or parent.get("component")):
            reader.problem(f"{path}.parent", "needs a 'trustZone' or 'component' id.")
            return None
        if parent.get("trustZone"):
            if parent["trustZone"] not in zone_ids:
                reader.problem(f"{path}.parent.trustZone", f"'{parent['trustZone']}' is not a trust zone here.")
                return None
            return None if parent["trustZone"] in default_zones else parent["trustZone"]
        if parent["component"] not in parents or parent["component"] in seen:
            reader.problem(f"{path}.parent.component", f"'{parent['component']}' is not a component here.")
            return None
        report.not_mapped(
            f"{path}.parent.component",
            f"Components do not nest in Garrison; placed in the trust zone of '{parent['component']}'.",
        )
        return zone_of(parent["component"], seen | {component_id})

    def threat_instances(entry: dict[str, Any], path: str, **element: str) -> None:
        value = entry.get("threats") or []
        if not isinstance(value, list):
            reader.problem(f"{path}.threats", "must be a list.")
            return
        for index, instance in enumerate(value):
            where = f"{path}.threats[{index}]"
            if not isinstance(instance, dict) or not isinstance(instance.get("threat"), str):
                reader.problem(where, "must be an object with a 'threat' id and a 'state'.")
                continue
            if instance["threat"] not in threats:
                reader.problem(f"{where}.threat", f"'{instance['threat']}' is not in the document's threats.")
                continue
            threat_path, threat = threats[instance["threat"]]
            planned = _plan_threat(threat, threat_path, instance, reader, report, **element)
            planned.key = f"{next(iter(element.values()))}/{threat['id']}"
            plan.threats.append(planned)
            used_threats.add(threat["id"])
            for m_index, ref in enumerate(instance.get("mitigations") or []):
                m_path = f"{where}.mitigations[{m_index}]"
                if not isinstance(ref, dict) or ref.get("mitigation") not in mitigations:
                    reader.problem(m_path, f"'{(ref or {}).get('mitigation')}' is not in the document's mitigations.")
                    continue
                mitigated.setdefault(ref["mitigation"], []).append(planned.key)

    used_threats: set[str] = set()
    mitigated: dict[str, list[str]] = {}
    component_ids = set(parents)
    for path, component in components:
        attributes = reader.attributes(component, path, set())
        plan.components.append(
            PlannedComponent(
                key=component["id"],
                path=path,
                name=clip(component["name"], 120, f"{path}.name", report),
                component_type=_component_type(component, attributes, path, report),
                description=str(component.get("description") or ""),
                boundary=zone_of(component["id"]),
            )
        )
        extra_tags = [t for t in component.get("tags") or [] if t and t not in COMPONENT_TYPES]
        if extra_tags:
            report.not_mapped(f"{path}.tags", f"Component tags {', '.join(map(str, extra_tags))} are not kept.")
        threat_instances(component, path, component=component["id"])
    for path, flow in flows:
        missing = [end for end in ("source", "destination") if flow[end] not in component_ids]
        for end in missing:
            reader.problem(f"{path}.{end}", f"'{flow[end]}' is not a component here.")
        if missing:
            continue
        if flow["source"] == flow["destination"]:
            reader.problem(f"{path}.destination", "A data flow needs two different components.")
            continue
        attributes = reader.attributes(flow, path, FLOW_ATTRIBUTES)
        if flow.get("bidirectional"):
            report.not_mapped(
                f"{path}.bidirectional", "Garrison flows go one way; imported source -> destination only."
            )
        authenticated = attributes.get("authenticated")
        if not isinstance(authenticated, bool):
            authenticated = False
            report.guessed(f"{path}.attributes.authenticated", False, "not stated; assumed unauthenticated")
        plan.flows.append(
            PlannedFlow(
                key=flow["id"],
                path=path,
                source=flow["source"],
                target=flow["destination"],
                data=clip(attributes.get("data") or flow["name"], 160, f"{path}.name", report),
                protocol=clip(attributes.get("protocol") or "", 60, f"{path}.attributes.protocol", report),
                authenticated=authenticated,
            )
        )
        threat_instances(flow, path, flow=flow["id"])
    for threat_id, (path, _) in threats.items():
        if threat_id not in used_threats:
            report.not_mapped(path, "No component or dataflow refers to this threat; Garrison threats need one.")
    for mitigation_id, (path, mitigation) in mitigations.items():
        plan.controls.append(_plan_control(mitigation, path, mitigated.get(mitigation_id, []), reader))
    if reader.problems:
        raise InterchangeError(reader.problems)
    return plan


def _plan_threat(
    threat: dict[str, Any],
    path: str,
    instance: dict[str, Any],
    reader: _Reader,
    report: ImportReport,
    **element: str,
) -> PlannedThreat:
    attributes = reader.attributes(threat, path, THREAT_ATTRIBUTES)
    risk = threat.get("risk") if isinstance(threat.get("risk"), dict) else {}
    scores = {}
    for name in ("likelihood", "impact"):
        value = risk.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100:
            scores[name] = score_from_otm(value)
        else:
            scores[name] = 3
            report.guessed(f"{path}.risk.{name}", 3, "missing or outside 0-100; set to the middle of the scale")
    status = attributes.get("status")
    if status not in ThreatStatus.values:
        status = ThreatStatus.NOT_APPLICABLE if instance.get("state") == "NOT_APPLICABLE" else ThreatStatus.ACCEPTED
    justification = str(attributes.get("justification") or "")
    if status == ThreatStatus.NOT_APPLICABLE and not justification.strip():
        justification = "Marked not applicable in the imported threat model."
        report.guessed(f"{path}.attributes.justification", justification, "not applicable without a justification")
    atlas = reader.id_list(attributes.get("atlas_techniques"), f"{path}.attributes.atlas_techniques")
    owasp = reader.id_list(attributes.get("owasp_ml"), f"{path}.attributes.owasp_ml")
    extra_tags = [t for t in threat.get("tags") or [] if t and t not in atlas and t not in owasp]
    if extra_tags:
        report.not_mapped(f"{path}.tags", f"Threat tags {', '.join(map(str, extra_tags))} are not kept.")
    if threat.get("cwes"):
        report.not_mapped(f"{path}.cwes", "CWE references are not kept.")
    return PlannedThreat(
        key="",
        path=path,
        title=clip(threat["name"], 200, f"{path}.name", report),
        stride=_stride(threat, path, report),
        description=str(threat.get("description") or ""),
        atlas_techniques=atlas,
        owasp_ml=owasp,
        likelihood=scores["likelihood"],
        impact=scores["impact"],
        status=status,
        justification=justification,
        catalog_key=clip(attributes.get("catalog_key") or "", 80, f"{path}.attributes.catalog_key", report),
        **element,
    )


def _plan_control(mitigation: dict[str, Any], path: str, threat_keys: list[str], reader: _Reader) -> PlannedControl:
    attributes = reader.attributes(mitigation, path, MITIGATION_ATTRIBUTES)
    control_type = attributes.get("type") or ControlType.PREVENTIVE
    if control_type not in ControlType.values:
        reader.problem(f"{path}.attributes.type", f"'{control_type}' is not one of {', '.join(ControlType.values)}.")
    status = attributes.get("status") or ControlStatus.PLANNED
    if status not in ControlStatus.values:
        reader.problem(f"{path}.attributes.status", f"'{status}' is not one of {', '.join(ControlStatus.values)}.")
    owner = attributes.get("owner") or ""
    if not isinstance(owner, str):
        reader.problem(f"{path}.attributes.owner", "must be a username.")
        owner = ""
    return PlannedControl(
        key=mitigation["id"],
        path=path,
        name=clip(mitigation["name"], 160, f"{path}.name", reader.report),
        description=str(mitigation.get("description") or ""),
        control_type=control_type,
        atlas_mitigations=reader.id_list(attributes.get("atlas_mitigations"), f"{path}.attributes.atlas_mitigations"),
        owner=owner,
        due_date=_date(attributes.get("due_date"), f"{path}.attributes.due_date", reader),
        status=status,
        threats=threat_keys,
    )
