"""Structural diff of two threat-model versions, element by element (matched by uid)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from threatmodel.models import Component, Control, DataFlow, Threat, ThreatModelVersion, TrustBoundary

SECTIONS: list[tuple[str, str, type]] = [
    ("boundaries", "Trust boundaries", TrustBoundary),
    ("components", "Components", Component),
    ("flows", "Data flows", DataFlow),
    ("threats", "Threats", Threat),
    ("controls", "Controls", Control),
]


@dataclass(frozen=True)
class ElementChange:
    """One element that differs: added, removed, or changed (with field-level before/after)."""

    uid: str
    label: str
    change: str  # "added" | "removed" | "changed"
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass
class SectionDiff:
    """The changes of one kind of element."""

    key: str
    title: str
    changes: list[ElementChange]

    def count(self, change: str) -> int:
        """How many elements were added, removed or changed."""
        return sum(1 for c in self.changes if c.change == change)


@dataclass
class VersionDiff:
    """Everything that differs between two versions."""

    old: ThreatModelVersion
    new: ThreatModelVersion
    sections: list[SectionDiff]

    @property
    def is_empty(self) -> bool:
        """Whether the versions have the same content."""
        return not any(section.changes for section in self.sections)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "old": self.old.number,
            "new": self.new.number,
            "sections": {
                s.key: [
                    {
                        "uid": c.uid,
                        "label": c.label,
                        "change": c.change,
                        "fields": {k: list(v) for k, v in c.fields.items()},
                    }
                    for c in s.changes
                ]
                for s in self.sections
            },
        }


def _value(element: Any, name: str) -> Any:
    value = getattr(element, name)
    if hasattr(value, "uid"):  # a related element: compare by identity, show by name
        return str(value)
    return value


def _rows(version: ThreatModelVersion, model: type) -> dict[str, Any]:
    related = [f.name for f in model._meta.get_fields() if f.many_to_one and f.name != "version"]
    queryset = model.objects.filter(version=version).select_related(*related)
    if model is Control:
        queryset = queryset.prefetch_related("threats")
    return {str(element.uid): element for element in queryset}


def _fields(element: Any) -> dict[str, Any]:
    values = {name: _value(element, name) for name in element.DIFF_FIELDS}
    if isinstance(element, Threat):
        values["inherent_risk"] = element.inherent_risk
    if isinstance(element, Control):
        values["threats"] = sorted(t.title for t in element.threats.all())
    return values


def diff_versions(old: ThreatModelVersion, new: ThreatModelVersion) -> VersionDiff:
    """Compare two versions of the same threat model."""
    if old.threat_model_id != new.threat_model_id:
        raise ValueError("Only versions of the same threat model can be compared.")
    sections = []
    for key, title, model in SECTIONS:
        before, after = _rows(old, model), _rows(new, model)
        changes = []
        for uid, element in after.items():
            if uid not in before:
                changes.append(ElementChange(uid=uid, label=str(element), change="added"))
                continue
            a, b = _fields(before[uid]), _fields(element)
            changed = {name: (a[name], b[name]) for name in b if a.get(name) != b[name]}
            if changed:
                changes.append(ElementChange(uid=uid, label=str(element), change="changed", fields=changed))
        for uid, element in before.items():
            if uid not in after:
                changes.append(ElementChange(uid=uid, label=str(element), change="removed"))
        changes.sort(key=lambda c: ({"added": 0, "changed": 1, "removed": 2}[c.change], c.label))
        sections.append(SectionDiff(key=key, title=title, changes=changes))
    return VersionDiff(old=old, new=new, sections=sections)
