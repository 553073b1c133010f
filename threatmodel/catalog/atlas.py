"""Load a MITRE ATLAS release (tactics, techniques, mitigations) from its ``ATLAS.yaml``.

The shipped copy lives in ``data/ATLAS.yaml`` with its Apache-2.0 licence. IDs
(``AML.TA0000``, ``AML.T0011.000``, ``AML.M0004``) are stable across releases and are
the keys; names are labels that change (ATLAS renamed "ML" to "AI" in 2025).
Case studies are not loaded: the catalog does not use them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from threatmodel.catalog._yaml import read_yaml

DATA_DIR = Path(__file__).resolve().parent / "data"
SHIPPED_ATLAS_PATH = DATA_DIR / "ATLAS.yaml"
MAX_ATLAS_BYTES = 20 * 1024 * 1024

TACTIC_ID = re.compile(r"AML\.TA\d{4}")
TECHNIQUE_ID = re.compile(r"AML\.T\d{4}(?:\.\d{3})?")
MITIGATION_ID = re.compile(r"AML\.M\d{4}")


class AtlasFormatError(ValueError):
    """The file is not a usable ATLAS release (wrong structure, missing or bad IDs, too large)."""


@dataclass(frozen=True)
class AtlasTactic:
    """An ATLAS tactic: the adversary's goal at one stage (``AML.TA0010`` Exfiltration)."""

    id: str
    name: str


@dataclass(frozen=True)
class AtlasTechnique:
    """An ATLAS technique or sub-technique; sub-techniques inherit their parent's tactics."""

    id: str
    name: str
    tactic_ids: tuple[str, ...]
    parent_id: str | None
    description: str

    @property
    def is_subtechnique(self) -> bool:
        """Whether this is a sub-technique such as ``AML.T0011.000``."""
        return self.parent_id is not None


@dataclass(frozen=True)
class AtlasMitigation:
    """An ATLAS mitigation and the techniques ATLAS says it addresses."""

    id: str
    name: str
    technique_ids: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class AtlasRelease:
    """One ATLAS release: read-only mappings from ID to object, in file order."""

    version: str
    tactics: Mapping[str, AtlasTactic]
    techniques: Mapping[str, AtlasTechnique]
    mitigations: Mapping[str, AtlasMitigation]

    def name_of(self, atlas_id: str) -> str:
        """The current name of a tactic, technique or mitigation ID (``KeyError`` if unknown)."""
        for table in (self.techniques, self.mitigations, self.tactics):
            if atlas_id in table:
                return table[atlas_id].name
        raise KeyError(atlas_id)

    def mitigations_for(self, technique_id: str) -> tuple[AtlasMitigation, ...]:
        """Mitigations ATLAS links to a technique, counting links made to its parent or sub-techniques."""
        related = _family(technique_id, self.techniques)
        return tuple(m for m in self.mitigations.values() if related.intersection(m.technique_ids))


def _family(technique_id: str, techniques: Mapping[str, AtlasTechnique]) -> set[str]:
    """The technique, its parent and its sub-techniques."""
    family = {technique_id}
    technique = techniques.get(technique_id)
    if technique is not None and technique.parent_id:
        family.add(technique.parent_id)
    family.update(t.id for t in techniques.values() if t.parent_id == technique_id)
    return family


def load_atlas(path: str | Path | None = None) -> AtlasRelease:
    """Load an ATLAS release from ``path`` (default: the shipped copy), validating its structure."""
    source = Path(path) if path is not None else SHIPPED_ATLAS_PATH
    data = read_yaml(source, max_bytes=MAX_ATLAS_BYTES, error=AtlasFormatError, what="ATLAS")
    return parse_atlas(data, source=str(source))


@functools.cache
def shipped_atlas() -> AtlasRelease:
    """The shipped ATLAS release, parsed once per process."""
    return load_atlas()


def parse_atlas(data: Any, *, source: str = "ATLAS data") -> AtlasRelease:
    """Build an ``AtlasRelease`` from already-parsed ATLAS.yaml data, or raise ``AtlasFormatError``."""
    if not isinstance(data, Mapping) or not isinstance(data.get("matrices"), list) or not data["matrices"]:
        raise AtlasFormatError(
            f"{source} is not an ATLAS release: expected a mapping with a non-empty 'matrices' list "
            f"(the dist/ATLAS.yaml file of mitre-atlas/atlas-data)."
        )
    version = data.get("version")
    if version is None or isinstance(version, bool) or not str(version).strip():
        raise AtlasFormatError(f"{source} is not an ATLAS release: the top-level 'version' field is missing.")

    raw_tactics: dict[str, Mapping[str, Any]] = {}
    raw_techniques: dict[str, Mapping[str, Any]] = {}
    raw_mitigations: dict[str, Mapping[str, Any]] = {}
    for index, matrix in enumerate(data["matrices"]):
        where = f"{source}, matrices[{index}]"
        if not isinstance(matrix, Mapping):
            raise AtlasFormatError(f"{where} must be a mapping with 'tactics', 'techniques' and 'mitigations'.")
        # A later matrix may repeat objects of an earlier one; the first occurrence wins.
        _collect(matrix, "tactics", TACTIC_ID, raw_tactics, where)
        _collect(matrix, "techniques", TECHNIQUE_ID, raw_techniques, where)
        _collect(matrix, "mitigations", MITIGATION_ID, raw_mitigations, where)
    for kind, table in (("tactics", raw_tactics), ("techniques", raw_techniques), ("mitigations", raw_mitigations)):
        if not table:
            raise AtlasFormatError(f"{source} is not an ATLAS release: it defines no {kind}.")

    tactics = {tid: AtlasTactic(id=tid, name=_text(obj, "name", tid, source)) for tid, obj in raw_tactics.items()}
    techniques = _build_techniques(raw_techniques, tactics, source)
    mitigations = _build_mitigations(raw_mitigations, techniques, source)
    return AtlasRelease(
        version=str(version).strip(),
        tactics=MappingProxyType(tactics),
        techniques=MappingProxyType(techniques),
        mitigations=MappingProxyType(mitigations),
    )


def _collect(
    matrix: Mapping[str, Any],
    key: str,
    pattern: re.Pattern[str],
    into: dict[str, Mapping[str, Any]],
    where: str,
) -> None:
    objects = matrix.get(key)
    if not isinstance(objects, list):
        raise AtlasFormatError(f"{where} has no '{key}' list; this does not look like an ATLAS release.")
    seen: set[str] = set()
    for position, obj in enumerate(objects):
        atlas_id = obj.get("id") if isinstance(obj, Mapping) else None
        if not isinstance(atlas_id, str) or not pattern.fullmatch(atlas_id):
            raise AtlasFormatError(
                f"{where}, {key}[{position}] has a missing or malformed 'id' ({atlas_id!r}); "
                f"expected something like {_EXAMPLES[key]}."
            )
        if atlas_id in seen:
            raise AtlasFormatError(f"{where}: {key} ID {atlas_id} appears more than once.")
        seen.add(atlas_id)
        into.setdefault(atlas_id, obj)


_EXAMPLES = {"tactics": "AML.TA0002", "techniques": "AML.T0011 or AML.T0011.000", "mitigations": "AML.M0004"}


def _text(obj: Mapping[str, Any], field: str, atlas_id: str, source: str, *, required: bool = True) -> str:
    value = obj.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise AtlasFormatError(f"{source}: {atlas_id} has no usable '{field}' (expected a non-empty string).")
    return value.strip()


def _id_list(obj: Mapping[str, Any], field: str, atlas_id: str, source: str) -> list[str]:
    values = obj.get(field) or []
    if not isinstance(values, list):
        raise AtlasFormatError(f"{source}: {atlas_id} field '{field}' must be a list.")
    ids = []
    for value in values:
        # Mitigations list techniques as {id, use}; techniques list tactics as plain IDs.
        ref = value.get("id") if isinstance(value, Mapping) else value
        if not isinstance(ref, str):
            raise AtlasFormatError(f"{source}: {atlas_id} field '{field}' has an entry without an ID: {value!r}.")
        if ref not in ids:
            ids.append(ref)
    return ids


def _is_subtechnique_id(technique_id: str) -> bool:
    return technique_id.count(".") == 2  # AML.T0011.000


def _build_techniques(
    raw: dict[str, Mapping[str, Any]], tactics: Mapping[str, AtlasTactic], source: str
) -> dict[str, AtlasTechnique]:
    own_tactics: dict[str, tuple[str, ...]] = {}
    parents: dict[str, str | None] = {}
    for tid, obj in raw.items():
        parent = obj.get("subtechnique-of")
        if parent is not None:
            if parent not in raw or _is_subtechnique_id(parent):
                raise AtlasFormatError(f"{source}: sub-technique {tid} names an unknown parent technique {parent!r}.")
            if not tid.startswith(parent + "."):
                raise AtlasFormatError(f"{source}: sub-technique {tid} does not belong under its parent {parent}.")
        elif _is_subtechnique_id(tid):
            raise AtlasFormatError(f"{source}: {tid} looks like a sub-technique but has no 'subtechnique-of'.")
        parents[tid] = parent
        tactic_ids = _id_list(obj, "tactics", tid, source)
        unknown = [t for t in tactic_ids if t not in tactics]
        if unknown:
            raise AtlasFormatError(f"{source}: technique {tid} refers to unknown tactics {', '.join(unknown)}.")
        if parent is None and not tactic_ids:
            raise AtlasFormatError(f"{source}: technique {tid} lists no tactics.")
        own_tactics[tid] = tuple(tactic_ids)
    return {
        tid: AtlasTechnique(
            id=tid,
            name=_text(obj, "name", tid, source),
            tactic_ids=own_tactics[tid] or own_tactics.get(parents[tid] or "", ()),
            parent_id=parents[tid],
            description=_text(obj, "description", tid, source, required=False),
        )
        for tid, obj in raw.items()
    }


def _build_mitigations(
    raw: dict[str, Mapping[str, Any]], techniques: Mapping[str, AtlasTechnique], source: str
) -> dict[str, AtlasMitigation]:
    mitigations = {}
    for mid, obj in raw.items():
        technique_ids = _id_list(obj, "techniques", mid, source)
        unknown = [t for t in technique_ids if t not in techniques]
        if unknown:
            raise AtlasFormatError(f"{source}: mitigation {mid} refers to unknown techniques {', '.join(unknown)}.")
        mitigations[mid] = AtlasMitigation(
            id=mid,
            name=_text(obj, "name", mid, source),
            technique_ids=tuple(technique_ids),
            description=_text(obj, "description", mid, source, required=False),
        )
    return mitigations
