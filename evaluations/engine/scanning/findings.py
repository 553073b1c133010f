"""Findings, verdicts and the report that a model-file scan produces."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from evaluations.engine.scanning.config import ScanConfig

#: MITRE ATLAS "User Execution: Unsafe ML Artifacts".
ATLAS_UNSAFE_ARTIFACT = "AML.T0011.000"

#: Bumped whenever a change to the rules could change a verdict, so stored reports can be re-checked.
SCANNER_VERSION = "1.0.1"


class Severity(enum.IntEnum):
    """How bad a finding is; ordered so that ``max()`` gives the worst."""

    INFO = 10
    LOW = 20
    MEDIUM = 30
    HIGH = 40
    CRITICAL = 50

    @property
    def label(self) -> str:
        """Lower-case name used in JSON and in messages."""
        return self.name.lower()


class Verdict(enum.StrEnum):
    """Overall outcome of a scan."""

    CLEAN = "clean"
    SUSPICIOUS = "suspicious"
    MALICIOUS = "malicious"
    REJECTED = "rejected"


class Code(enum.StrEnum):
    """Stable machine-readable finding codes."""

    DANGEROUS_GLOBAL = "dangerous-global"
    UNKNOWN_GLOBAL = "unknown-global"
    LIBRARY_GLOBAL = "library-global"
    TRUSTED_GLOBAL = "trusted-global"
    UNRESOLVED_GLOBAL = "unresolved-global"
    DYNAMIC_CALL = "dynamic-call"
    BUILD_ON_GLOBAL = "build-on-global"
    EXTENSION_OPCODE = "extension-opcode"
    CALL_CHAIN = "dangerous-call-chain"
    PICKLED_ARRAY = "pickled-array"
    UNTRUSTED_TYPE = "untrusted-type"
    SKOPS_UNAVAILABLE = "skops-unavailable"
    DUPLICATE_MEMBER = "duplicate-member"
    UNSAFE_MEMBER_NAME = "unsafe-member-name"
    TRAILING_DATA = "trailing-data"
    UNPARSED_MEMBER = "unparsed-member"
    # The codes below mean the scanner could not vouch for the file at all.
    EMPTY_FILE = "empty-file"
    UNKNOWN_FORMAT = "unknown-format"
    UNSUPPORTED_FORMAT = "unsupported-format"
    UNSUPPORTED_COMPRESSION = "unsupported-compression"
    RESOURCE_LIMIT = "resource-limit"
    MALFORMED_PICKLE = "malformed-pickle"
    MALFORMED_ARCHIVE = "malformed-archive"
    ENCRYPTED_MEMBER = "encrypted-member"
    INVALID_SAFETENSORS = "invalid-safetensors"
    INVALID_NPY = "invalid-npy"
    SCAN_ERROR = "scan-error"


#: Codes that make the verdict ``rejected``: the file was not (fully) understood, so it cannot be vouched for.
REJECTING_CODES: frozenset[Code] = frozenset(
    {
        Code.EMPTY_FILE,
        Code.UNKNOWN_FORMAT,
        Code.UNSUPPORTED_FORMAT,
        Code.UNSUPPORTED_COMPRESSION,
        Code.RESOURCE_LIMIT,
        Code.MALFORMED_PICKLE,
        Code.MALFORMED_ARCHIVE,
        Code.ENCRYPTED_MEMBER,
        Code.INVALID_SAFETENSORS,
        Code.INVALID_NPY,
        Code.SCAN_ERROR,
    }
)


@dataclass(frozen=True)
class Finding:
    """One observation about a model file, with where it was seen and why it matters."""

    severity: Severity
    code: Code
    message: str
    member: str | None = None
    offset: int | None = None
    module: str | None = None
    name: str | None = None
    technique: str | None = ATLAS_UNSAFE_ARTIFACT

    @property
    def global_name(self) -> str | None:
        """``module.name`` of the offending import, when there is one."""
        if self.module is None or self.name is None:
            return None
        return f"{self.module}.{self.name}"

    @property
    def rejects(self) -> bool:
        """Whether this finding alone means the file cannot be vouched for."""
        return self.code in REJECTING_CODES

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        return {
            "severity": self.severity.label,
            "code": str(self.code),
            "message": self.message,
            "member": self.member,
            "offset": self.offset,
            "module": self.module,
            "name": self.name,
            "technique": self.technique,
        }


def verdict_for(findings: tuple[Finding, ...] | list[Finding]) -> Verdict:
    """Fold findings into a verdict: malicious beats rejected beats suspicious beats clean."""
    if any(f.severity >= Severity.CRITICAL for f in findings):
        return Verdict.MALICIOUS
    if any(f.rejects for f in findings):
        return Verdict.REJECTED
    if any(f.severity >= Severity.MEDIUM for f in findings):
        return Verdict.SUSPICIOUS
    return Verdict.CLEAN


class FindingSink:
    """Collects findings for one member into a shared list, dropping repeats of the same global or code."""

    def __init__(self, member: str | None, findings: list[Finding] | None = None) -> None:
        self.member = member
        self.findings: list[Finding] = findings if findings is not None else []
        self._seen: set[tuple[Any, ...]] = set()

    def add(
        self,
        severity: Severity,
        code: Code,
        message: str,
        *,
        offset: int | None = None,
        module: str | None = None,
        name: str | None = None,
        technique: str | None = "default",
    ) -> None:
        """Record a finding unless an identical one (same code and global) is already recorded."""
        key = (code, module, name, None if module else message)
        if key in self._seen:
            return
        self._seen.add(key)
        kwargs: dict[str, Any] = {} if technique == "default" else {"technique": technique}
        self.findings.append(
            Finding(severity, code, message, member=self.member, offset=offset, module=module, name=name, **kwargs)
        )


@dataclass(frozen=True)
class ScanReport:
    """Result of statically scanning one model file; never obtained by loading it."""

    name: str
    path: str | None
    sha256: str
    size_bytes: int
    format: str
    findings: tuple[Finding, ...]
    verdict: Verdict
    elapsed_seconds: float
    config: ScanConfig = field(default_factory=ScanConfig)
    scanner_version: str = SCANNER_VERSION

    @property
    def is_clean(self) -> bool:
        """True when nothing above LOW was found and the file was fully understood."""
        return self.verdict is Verdict.CLEAN

    @property
    def max_severity(self) -> Severity | None:
        """Worst severity among the findings, or None when there are none."""
        return max((f.severity for f in self.findings), default=None)

    def findings_at_least(self, severity: Severity) -> tuple[Finding, ...]:
        """Findings at or above ``severity``."""
        return tuple(f for f in self.findings if f.severity >= severity)

    def summary(self) -> str:
        """One line for logs and exception messages."""
        worst = sorted(self.findings, key=lambda f: f.severity, reverse=True)[:3]
        reasons = "; ".join(f"[{f.severity.label}] {f.message}" for f in worst)
        return f"{self.name}: {self.verdict} ({self.format})" + (f": {reasons}" if reasons else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation for storage alongside the model artifact."""
        return {
            "name": self.name,
            "path": self.path,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "format": self.format,
            "verdict": str(self.verdict),
            "is_clean": self.is_clean,
            "max_severity": self.max_severity.label if self.max_severity is not None else None,
            "findings": [f.to_dict() for f in self.findings],
            "elapsed_seconds": self.elapsed_seconds,
            "scanner_version": self.scanner_version,
            "config": self.config.to_dict(),
        }
