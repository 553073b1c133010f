"""Read an OWASP Threat Dragon v2 model into an import plan.

Threat Dragon draws diagrams; Garrison keeps typed components. The reader maps
processes, stores and actors to component types by keywords in their names
(falling back to ``serving_api``, ``data_source`` and ``client``), puts each
component in the smallest trust-boundary box that holds its centre, turns flows
into data flows and threats into accepted custom threats (severity -> likelihood
and impact, type -> STRIDE), and a threat's mitigation text into a control.
Every guess and everything left out is in the report.
"""

from __future__ import annotations

import re
from typing import Any

from threatmodel.catalog import STRIDE_CATEGORIES
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
from threatmodel.models import ControlStatus, ThreatStatus

SHAPES = {
    "process": "tm.Process",
    "store": "tm.Store",
    "actor": "tm.Actor",
    "flow": "tm.Flow",
    "trust-boundary-box": "tm.BoundaryBox",
    "trust-boundary-curve": "tm.Boundary",
}

# Per element kind: the default type and the types a name may pick.
COMPONENT_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tm.Process": (
        "serving_api",
        ("feature_store", "model_registry", "training_pipeline", "ingestion_pipeline", "serving_api"),
    ),
    "tm.Store": (
        "data_source",
        ("feature_store", "model_registry", "model_artifact", "third_party_asset", "data_source"),
    ),
    "tm.Actor": ("client", ("third_party_asset", "human_reviewer", "client")),
}

SEVERITY = {"critical": (5, 5), "high": (4, 4), "medium": (3, 3), "low": (2, 2)}

# Threat Dragon's other threat models (CIA, LINDDUN, DIE, PLOT4ai) mapped to the nearest STRIDE category.
THREAT_TYPES = {
    "confidentiality": "information_disclosure",
    "integrity": "tampering",
    "availability": "denial_of_service",
    "linkability": "information_disclosure",
    "identifiability": "information_disclosure",
    "non_repudiation": "repudiation",
    "detectability": "information_disclosure",
    "disclosure_of_information": "information_disclosure",
    "unawareness": "information_disclosure",
    "non_compliance": "repudiation",
    "distributed": "denial_of_service",
    "immutable": "tampering",
    "ephemeral": "tampering",
}


def _kind(cell: dict[str, Any]) -> str:
    data = cell.get("data") if isinstance(cell.get("data"), dict) else {}
    kind = data.get("type") or cell.get("shape") or ""
    kind = SHAPES.get(kind, kind)
    if kind == "tm.Boundary" and _box(cell) is not None and not isinstance(cell.get("source"), dict):
        return "tm.BoundaryBox"
    return kind


def _box(cell: dict[str, Any]) -> tuple[float, float, float, float] | None:
    position, size = cell.get("position"), cell.get("size")
    try:
        x, y = float(position["x"]), float(position["y"])
        width, height = float(size["width"]), float(size["height"])
    except (TypeError, KeyError, ValueError):
        return None
    return x, y, width, height


def _name(cell: dict[str, Any], fallback: str) -> str:
    data = cell.get("data") or {}
    name = data.get("name") if isinstance(data.get("name"), str) else ""
    if not name.strip():
        # Older Threat Dragon 2 files keep the label only in the drawing attributes.
        attrs = cell.get("attrs")
        label = attrs.get("text") if isinstance(attrs, dict) else None
        text = label.get("text") if isinstance(label, dict) else None
        name = text if isinstance(text, str) else ""
    return name.strip() or fallback


def _stride(kind: Any, title: str, path: str, report: ImportReport) -> str:
    key = re.sub(r"[\s-]+", "_", str(kind or "").strip().lower())
    if key in STRIDE_CATEGORIES:
        return key
    if key in THREAT_TYPES:
        report.guessed(f"{path}.type", THREAT_TYPES[key], f"'{kind}' mapped to the nearest STRIDE category")
        return THREAT_TYPES[key]
    stride, reason = guess_stride(f"{kind or ''} {title}")
    report.guessed(f"{path}.type", stride, reason)
    return stride


def _check_structure(document: Any) -> list[tuple[str, dict[str, Any]]]:
    """The diagrams' cells with their paths, or :class:`InterchangeError` saying what is wrong."""
    if not isinstance(document, dict):
        raise InterchangeError([{"path": "$", "reason": "A Threat Dragon model is a JSON object."}])
    problems = []
    version = document.get("version")
    detail = document.get("detail")
    diagrams = detail.get("diagrams") if isinstance(detail, dict) else None
    if isinstance(diagrams, list) and any(isinstance(d, dict) and "diagramJson" in d for d in diagrams):
        raise InterchangeError(
            [
                {
                    "path": "detail.diagrams",
                    "reason": "This is a Threat Dragon v1 model; open it in Threat Dragon 2 and "
                    "save it to convert it, then import again.",
                }
            ]
        )
    if not isinstance(version, str) or not version.startswith("2."):
        problems.append({"path": "version", "reason": f"{version!r} is not a Threat Dragon 2 model version (2.x)."})
    if not isinstance(document.get("summary"), dict):
        problems.append({"path": "summary", "reason": "must be an object with the model's title."})
    if not isinstance(diagrams, list):
        problems.append({"path": "detail.diagrams", "reason": "must be a list of diagrams."})
        diagrams = []
    cells = []
    for d_index, diagram in enumerate(diagrams):
        path = f"detail.diagrams[{d_index}]"
        if not isinstance(diagram, dict) or not isinstance(diagram.get("cells"), list):
            problems.append({"path": f"{path}.cells", "reason": "must be a list of cells."})
            continue
        for c_index, cell in enumerate(diagram["cells"]):
            where = f"{path}.cells[{c_index}]"
            if not isinstance(cell, dict) or not isinstance(cell.get("id"), str):
                problems.append({"path": where, "reason": "must be an object with a string 'id'."})
                continue
            if cell.get("data") is not None and not isinstance(cell["data"], dict):
                problems.append({"path": f"{where}.data", "reason": "must be an object."})
                continue
            cells.append((where, cell))
    if problems:
        raise InterchangeError(problems)
    return cells


def parse_threat_dragon(document: Any, report: ImportReport) -> Plan:
    """Read a Threat Dragon v2 model into a plan; raise :class:`InterchangeError` if it is not one."""
    cells = _check_structure(document)
    plan = Plan(title=clip(document["summary"].get("title") or "", 160, "summary.title", report))
    boxes: list[tuple[str, tuple[float, float, float, float]]] = []
    for path, cell in cells:
        kind = _kind(cell)
        if kind == "tm.BoundaryBox":
            box = _box(cell)
            if box is None:
                report.not_mapped(path, "This trust-boundary box has no position and size; it was left out.")
                continue
            plan.boundaries.append(
                PlannedBoundary(key=cell["id"], path=path, name=clip(_name(cell, "Trust boundary"), 120, path, report))
            )
            boxes.append((cell["id"], box))
        elif kind == "tm.Boundary":
            report.not_mapped(
                path,
                f"Trust-boundary curve '{_name(cell, 'unnamed')}' encloses no area, so no components could be "
                "placed in it; draw it as a boundary box to import it.",
            )
    component_cells = {}
    for path, cell in cells:
        kind = _kind(cell)
        if kind not in COMPONENT_KINDS:
            continue
        default, allowed = COMPONENT_KINDS[kind]
        name = _name(cell, kind.removeprefix("tm."))
        component_type, reason = guess_component_type(name, default, allowed=allowed)
        report.guessed(path, component_type, f"{kind}: {reason}")
        data = cell.get("data") or {}
        description = str(data.get("description") or "")
        if data.get("outOfScope"):
            description = f"{description}\nOut of scope in Threat Dragon: {data.get('reasonOutOfScope') or ''}".strip()
        plan.components.append(
            PlannedComponent(
                key=cell["id"],
                path=path,
                name=clip(name, 120, f"{path}.data.name", report),
                component_type=component_type,
                description=description,
                boundary=_boundary_for(cell, boxes, path, report),
            )
        )
        component_cells[cell["id"]] = cell
        _plan_threats(plan, cell, path, report, component=cell["id"])
    for path, cell in cells:
        kind = _kind(cell)
        if kind == "tm.Flow":
            _plan_flow(plan, cell, path, component_cells, report)
        elif kind not in COMPONENT_KINDS and kind not in ("tm.BoundaryBox", "tm.Boundary"):
            report.not_mapped(path, f"Cells of type '{kind or 'unknown'}' are not imported.")
    return plan


def _boundary_for(
    cell: dict[str, Any], boxes: list[tuple[str, tuple[float, float, float, float]]], path: str, report: ImportReport
) -> str | None:
    box = _box(cell)
    if box is None:
        if boxes:
            report.guessed(
                f"{path}.position", "no trust boundary", "the element has no position, so no boundary could hold it"
            )
        return None
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    holding = [(w * h, key) for key, (x, y, w, h) in boxes if x <= cx <= x + w and y <= cy <= y + h]
    if not holding:
        return None
    holding.sort()
    if len(holding) > 1:
        report.guessed(f"{path}.position", holding[0][1], "inside several boundary boxes; put in the smallest")
    return holding[0][1]


def _plan_flow(
    plan: Plan, cell: dict[str, Any], path: str, components: dict[str, dict[str, Any]], report: ImportReport
) -> None:
    data = cell.get("data") or {}
    name = _name(cell, "Data flow")
    ends = {}
    for end in ("source", "target"):
        ref = cell.get(end)
        ends[end] = ref.get("cell") if isinstance(ref, dict) else None
        if ends[end] not in components:
            report.not_mapped(
                f"{path}.{end}",
                f"Flow '{name}' does not connect to a process, store or actor at its {end}; the flow and its "
                "threats were left out.",
            )
            return
    if ends["source"] == ends["target"]:
        report.not_mapped(path, f"Flow '{name}' starts and ends at the same element; it was left out.")
        return
    encrypted, public = bool(data.get("isEncrypted")), bool(data.get("isPublicNetwork"))
    authenticated = encrypted and not public
    report.guessed(
        f"{path}.data",
        f"authenticated={authenticated}",
        f"Threat Dragon records encryption ({encrypted}) and public network ({public}), not authentication",
    )
    if data.get("isBidirectional"):
        report.not_mapped(f"{path}.data.isBidirectional", "Garrison flows go one way; imported source -> target only.")
    plan.flows.append(
        PlannedFlow(
            key=cell["id"],
            path=path,
            source=ends["source"],
            target=ends["target"],
            data=clip(name, 160, f"{path}.data.name", report),
            protocol=clip(data.get("protocol") or "", 60, f"{path}.data.protocol", report),
            authenticated=authenticated,
        )
    )
    _plan_threats(plan, cell, path, report, flow=cell["id"])


def _plan_threats(plan: Plan, cell: dict[str, Any], path: str, report: ImportReport, **element: str) -> None:
    threats = (cell.get("data") or {}).get("threats") or []
    if not isinstance(threats, list):
        report.not_mapped(f"{path}.data.threats", "Threats must be a list; none were imported from this element.")
        return
    for index, threat in enumerate(threats):
        where = f"{path}.data.threats[{index}]"
        if not isinstance(threat, dict):
            report.not_mapped(where, "A threat must be an object; it was left out.")
            continue
        title = clip(threat.get("title") or "Untitled threat", 200, f"{where}.title", report)
        severity = str(threat.get("severity") or "").strip().lower()
        if severity not in SEVERITY:
            report.guessed(f"{where}.severity", "likelihood 3, impact 3", f"unknown severity '{severity}'")
        likelihood, impact = SEVERITY.get(severity, (3, 3))
        state = re.sub(r"[\s_/-]+", "", str(threat.get("status") or "open").lower())
        status, justification = ThreatStatus.ACCEPTED, ""
        if state in ("notapplicable", "na"):
            status = ThreatStatus.NOT_APPLICABLE
            justification = "Marked not applicable in Threat Dragon."
        elif state not in ("open", "mitigated"):
            report.guessed(f"{where}.status", "accepted", f"unknown status '{threat.get('status')}'")
        key = f"{cell['id']}/{index}"
        plan.threats.append(
            PlannedThreat(
                key=key,
                path=where,
                title=title,
                stride=_stride(threat.get("type"), title, where, report),
                description=str(threat.get("description") or ""),
                likelihood=likelihood,
                impact=impact,
                status=status,
                justification=justification,
                **element,
            )
        )
        mitigation = str(threat.get("mitigation") or "").strip()
        if mitigation:
            plan.controls.append(
                PlannedControl(
                    key=f"{key}/mitigation",
                    path=f"{where}.mitigation",
                    name=clip(f"Mitigation: {title}", 160, f"{where}.mitigation", report),
                    description=mitigation,
                    status=ControlStatus.IMPLEMENTED if state == "mitigated" else ControlStatus.PLANNED,
                    threats=[key],
                )
            )
