"""skops archives: skops' own audit of untrusted types, plus our deny-list over ``schema.json``."""

from __future__ import annotations

import json
import logging
import zipfile
import zlib
from typing import Any

from evaluations.engine.scanning.config import ScanConfig
from evaluations.engine.scanning.findings import Code, FindingSink, Severity
from evaluations.engine.scanning.policy import classify_global

logger = logging.getLogger(__name__)


def audit_skops(data: bytes, zf: zipfile.ZipFile, sink: FindingSink, config: ScanConfig) -> None:
    """Flag types skops would refuse by default (HIGH) and deny-listed references in the schema (CRITICAL).

    Types named in ``config.extra_safe_globals`` are vetted by the caller (e.g. the fitted tree state
    that the skops loader allows): they are recorded as INFO ``trusted-global`` instead of HIGH.
    """
    denied = _denied_schema_references(zf, sink, config)
    try:
        import skops.io as sio  # imported lazily: it pulls in scikit-learn
    except ImportError:
        sink.add(
            Severity.MEDIUM,
            Code.SKOPS_UNAVAILABLE,
            "skops is not installed, so the types in this skops file could not be audited; "
            "install skops to scan skops files",
            technique=None,
        )
        return
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises assorted errors on hostile schemas; any of them means "refuse"
        logger.debug("skops audit failed", exc_info=True)
        sink.add(Severity.HIGH, Code.MALFORMED_ARCHIVE, f"skops cannot parse the schema ({exc})", technique=None)
        return
    for type_name in untrusted:
        if type_name in denied:
            continue
        module, _, name = type_name.rpartition(".")
        if type_name in config.extra_safe_globals:
            sink.add(
                Severity.INFO,
                Code.TRUSTED_GLOBAL,
                f"{type_name} is not in skops' trusted set but is allowed by ScanConfig.extra_safe_globals",
                module=module or None,
                name=name or type_name,
            )
            continue
        sink.add(
            Severity.HIGH,
            Code.UNTRUSTED_TYPE,
            f"{type_name} is not in skops' trusted set; skops.io.load would refuse it unless it is "
            "passed in trusted=, and loading it runs its code",
            module=module or None,
            name=name or type_name,
        )


def _denied_schema_references(zf: zipfile.ZipFile, archive_sink: FindingSink, config: ScanConfig) -> set[str]:
    member = f"{archive_sink.member}::schema.json" if archive_sink.member else "schema.json"
    sink = FindingSink(member, archive_sink.findings)
    try:
        raw = read_member(zf, "schema.json", config.max_skops_schema_bytes)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError) as exc:
        sink.add(Severity.HIGH, Code.MALFORMED_ARCHIVE, f"schema.json cannot be read ({exc})", technique=None)
        return set()
    if raw is None:
        sink.add(
            Severity.HIGH,
            Code.RESOURCE_LIMIT,
            f"schema.json is missing or larger than max_skops_schema_bytes={config.max_skops_schema_bytes}",
            technique=None,
        )
        return set()
    try:
        schema = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        sink.add(Severity.HIGH, Code.MALFORMED_ARCHIVE, f"schema.json is not valid JSON ({exc})", technique=None)
        return set()
    denied: set[str] = set()
    # Iterative walk: schemas can be deeply nested and recursion would let a file crash the scanner.
    pending: list[Any] = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            module, cls = node.get("__module__"), node.get("__class__")
            if isinstance(module, str) and isinstance(cls, str):
                verdict = classify_global(module, cls, config)
                if verdict.severity == Severity.CRITICAL:
                    denied.add(verdict.qualified)
                    sink.add(
                        Severity.CRITICAL,
                        Code.DANGEROUS_GLOBAL,
                        f"schema.json references {verdict.qualified}, which {verdict.reason}",
                        module=verdict.module,
                        name=verdict.name,
                    )
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return denied


def read_member(zf: zipfile.ZipFile, name: str, cap: int) -> bytes | None:
    """Read a small member fully, or None when it is missing or larger than ``cap``."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    if info.file_size > cap:
        return None
    with zf.open(info) as fh:
        return fh.read(cap + 1)
