"""Entry points: dispatch a file or member to the right format scanner and fold findings into a report."""

from __future__ import annotations

import hashlib
import io
import logging
import lzma
import os
import time
import tokenize
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from evaluations.engine.scanning.archives import scan_zip
from evaluations.engine.scanning.config import ScanConfig
from evaluations.engine.scanning.findings import Code, Finding, FindingSink, ScanReport, Severity, verdict_for
from evaluations.engine.scanning.formats import (
    COMPRESSED_KINDS,
    UNSUPPORTED_KINDS,
    Kind,
    check_npy_size,
    decompress,
    detect_kind,
    read_npy_header,
    validate_safetensors,
)
from evaluations.engine.scanning.pickle_scan import (
    TORCH_LEGACY_MAGIC,
    ScanLimitExceeded,
    scan_pickle_sequence,
)
from evaluations.engine.scanning.streams import BoundedReader

logger = logging.getLogger(__name__)

_HASH_CHUNK = 1024 * 1024


class UnsafeModelFile(Exception):
    """Raised by :func:`ensure_clean` when a model file is not clean; carries the full report."""

    def __init__(self, report: ScanReport) -> None:
        super().__init__(
            f"Refusing to load {report.summary()}. Inspect report.findings; load only files whose "
            "verdict is clean, or convert the model to safetensors/skops."
        )
        self.report = report


@dataclass
class _Scan:
    """Mutable state of one scan; lives only for the duration of a call."""

    config: ScanConfig
    findings: list[Finding] = field(default_factory=list)

    def scan_stream(self, stream: BinaryIO, size: int, label: str | None, depth: int, strict: bool = True) -> str:
        """Detect the format of ``stream`` (``size`` bytes, positioned at 0) and scan it; returns the format."""
        sink = FindingSink(label, self.findings)
        if depth > self.config.max_nesting_depth:
            sink.add(
                Severity.HIGH,
                Code.RESOURCE_LIMIT,
                f"rejected: containers nested deeper than max_nesting_depth={self.config.max_nesting_depth}",
                technique=None,
            )
            return "nested"
        head = stream.read(16)
        stream.seek(0)
        kind = detect_kind(head, size)
        try:
            return self._dispatch(kind, stream, size, label, depth, strict, sink)
        except ScanLimitExceeded as exc:
            sink.add(Severity.HIGH, Code.RESOURCE_LIMIT, f"rejected: {exc}", technique=None)
            return str(kind)
        except (zipfile.BadZipFile, zlib.error, EOFError, OverflowError, NotImplementedError) as exc:
            sink.add(Severity.HIGH, Code.MALFORMED_ARCHIVE, f"the data cannot be decompressed ({exc})", technique=None)
            return str(kind)
        except Exception as exc:  # a scanner bug or exotic input must yield a rejection, never a crash
            logger.exception("model-file scanner failed on %s", label or "<file>")
            sink.add(
                Severity.HIGH,
                Code.SCAN_ERROR,
                f"the scanner failed on this input ({type(exc).__name__}: {exc}); treat it as unsafe",
                technique=None,
            )
            return str(kind)

    def _dispatch(
        self, kind: Kind, stream: BinaryIO, size: int, label: str | None, depth: int, strict: bool, sink: FindingSink
    ) -> str:
        if kind is Kind.EMPTY:
            sink.add(Severity.HIGH, Code.EMPTY_FILE, "the file is empty; upload the model file again", technique=None)
            return "empty"
        if kind is Kind.ZIP:
            return scan_zip(
                stream,
                label=label,
                depth=depth,
                config=self.config,
                findings=self.findings,
                scan_member=self.scan_stream,
            )
        if kind in (Kind.PICKLE, Kind.MAYBE_PICKLE):
            return self._scan_pickles(stream, size, label, depth, strict, sink, headerless=kind is Kind.MAYBE_PICKLE)
        if kind is Kind.NPY:
            return self._scan_npy(stream, size, label, depth, sink)
        if kind is Kind.SAFETENSORS:
            validate_safetensors(stream, size, sink, self.config)
            return "safetensors"
        if kind in COMPRESSED_KINDS:
            return self._scan_compressed(kind, stream, size, label, depth, sink)
        if kind in (Kind.LZ4, Kind.JOBLIB_LEGACY):
            sink.add(
                Severity.HIGH,
                Code.UNSUPPORTED_COMPRESSION,
                f"{kind} compression is not supported by the scanner; re-save with joblib compress='zlib', "
                "'gzip', 'bz2', 'xz' or 'lzma', or better as safetensors/skops",
                technique=None,
            )
            return str(kind)
        if kind in UNSUPPORTED_KINDS:
            sink.add(
                Severity.HIGH,
                Code.UNSUPPORTED_FORMAT,
                f"{UNSUPPORTED_KINDS[kind]} files are not supported by the scanner",
                technique=None,
            )
            return str(kind)
        if strict:
            sink.add(Severity.HIGH, Code.UNKNOWN_FORMAT, _UNKNOWN_MESSAGE, technique=None)
        return "unknown"

    def _scan_pickles(
        self,
        stream: BinaryIO,
        size: int,
        label: str | None,
        depth: int,
        strict: bool,
        sink: FindingSink,
        *,
        headerless: bool,
    ) -> str:
        cap = self.config.max_pickle_bytes
        reader = BoundedReader(
            stream, limit=min(size, cap), line_limit=self.config.max_pickle_line_bytes, capped=size > cap
        )
        # Protocol 0/1 pickles have no magic number; parse into a scratch sink first so random bytes that
        # merely start with an opcode letter are reported as an unknown format, not as a broken pickle.
        scratch = FindingSink(label, []) if headerless or not strict else sink
        results = scan_pickle_sequence(reader, scratch, self.config, depth=0)
        if scratch is not sink:
            if not results and all(f.code == Code.MALFORMED_PICKLE for f in scratch.findings):
                if strict:
                    sink.add(Severity.HIGH, Code.UNKNOWN_FORMAT, _UNKNOWN_MESSAGE, technique=None)
                else:
                    sink.add(
                        Severity.INFO,
                        Code.UNPARSED_MEMBER,
                        "the member starts like a pickle but does not parse as one; no loader would unpickle it",
                        technique=None,
                    )
                return "unknown"
            for finding in scratch.findings:
                sink.add(
                    finding.severity,
                    finding.code,
                    finding.message,
                    offset=finding.offset,
                    module=finding.module,
                    name=finding.name,
                    technique=finding.technique,
                )
        if any(r.uses_joblib_arrays for r in results):
            self._rescan_as_plain_pickle(stream, size, label, sink)
        if results and results[0].value == TORCH_LEGACY_MAGIC and not isinstance(results[0].value, bool):
            return "torch-legacy"
        if any(r.uses_joblib_arrays for r in results):
            return "joblib"
        return "pickle"

    def _rescan_as_plain_pickle(self, stream: BinaryIO, size: int, label: str | None, sink: FindingSink) -> None:
        """Walk a joblib file again the way ``pickle.load``/``torch.load`` would, without skipping array bytes.

        Otherwise opcodes smuggled into the "array bytes" would be invisible to us yet run under a plain
        unpickler. That walk usually breaks on real array data, so only its security findings are kept.
        """
        stream.seek(0)
        cap = self.config.max_pickle_bytes
        reader = BoundedReader(
            stream, limit=min(size, cap), line_limit=self.config.max_pickle_line_bytes, capped=size > cap
        )
        scratch = FindingSink(label, [])
        try:
            scan_pickle_sequence(reader, scratch, self.config, follow_joblib_arrays=False)
        except ScanLimitExceeded:
            logger.debug("plain-pickle walk of a joblib file hit a limit", exc_info=True)
        for finding in scratch.findings:
            if finding.code in (Code.MALFORMED_PICKLE, Code.TRAILING_DATA):
                continue
            sink.add(
                finding.severity,
                finding.code,
                f"{finding.message} (seen when read as a plain pickle, as pickle.load or torch.load would)",
                offset=finding.offset,
                module=finding.module,
                name=finding.name,
                technique=finding.technique,
            )

    def _scan_npy(self, stream: BinaryIO, size: int, label: str | None, depth: int, sink: FindingSink) -> str:
        try:
            shape, dtype, header_end = read_npy_header(stream, self.config)
        except (ValueError, TypeError, SyntaxError, OverflowError, tokenize.TokenError) as exc:
            sink.add(Severity.HIGH, Code.INVALID_NPY, f"the .npy header is invalid ({exc})", technique=None)
            return "npy"
        if not dtype.hasobject:
            problem = check_npy_size(shape, dtype, size - header_end)
            if problem:
                sink.add(Severity.HIGH, Code.INVALID_NPY, f"rejected: {problem}", technique=None)
            return "npy"
        # numpy writes object arrays as a pickle right after the header; np.load(allow_pickle=True) runs it.
        sink.add(
            Severity.LOW,
            Code.PICKLED_ARRAY,
            "object-dtype array: the payload is a pickle and needs np.load(allow_pickle=True) (scanned)",
        )
        cap = self.config.max_pickle_bytes
        reader = BoundedReader(
            stream,
            limit=min(size - header_end, cap),
            start=header_end,
            line_limit=self.config.max_pickle_line_bytes,
            capped=size - header_end > cap,
        )
        scan_pickle_sequence(reader, sink, self.config, depth=0)
        return "npy-object"

    def _scan_compressed(
        self, kind: Kind, stream: BinaryIO, size: int, label: str | None, depth: int, sink: FindingSink
    ) -> str:
        cap = self.config.max_decompressed_bytes
        if size > cap:
            sink.add(
                Severity.HIGH,
                Code.RESOURCE_LIMIT,
                f"rejected: the {kind} stream is larger than max_decompressed_bytes={cap}",
                technique=None,
            )
            return str(kind)
        try:
            data = decompress(kind, stream.read(), cap)
        except OverflowError:
            sink.add(
                Severity.HIGH,
                Code.RESOURCE_LIMIT,
                f"rejected: the {kind} stream expands past max_decompressed_bytes={cap} (decompression bomb?)",
                technique=None,
            )
            return str(kind)
        except (ValueError, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            sink.add(
                Severity.HIGH,
                Code.MALFORMED_ARCHIVE,
                f"the {kind} stream cannot be decompressed ({exc})",
                technique=None,
            )
            return str(kind)
        inner_label = f"{label}::<{kind}>" if label else f"<{kind}>"
        inner = self.scan_stream(io.BytesIO(data), len(data), inner_label, depth + 1)
        return f"{inner}+{kind}"


_UNKNOWN_MESSAGE = (
    "the file is not a format the scanner understands (pickle, joblib, torch zip or legacy, TorchScript, "
    "npy/npz, safetensors, skops); it cannot be vouched for"
)


def _report(name: str, path: str | None, sha256: str, size: int, fmt: str, scan: _Scan, started: float) -> ScanReport:
    findings = tuple(sorted(scan.findings, key=lambda f: (-f.severity, f.member or "", f.offset or 0)))
    report = ScanReport(
        name=name,
        path=path,
        sha256=sha256,
        size_bytes=size,
        format=fmt,
        findings=findings,
        verdict=verdict_for(findings),
        elapsed_seconds=time.perf_counter() - started,
        config=scan.config,
    )
    logger.info("scanned %s: %s (%s, %d findings)", name, report.verdict, fmt, len(findings))
    return report


def scan_bytes(data: bytes, *, name: str, config: ScanConfig | None = None) -> ScanReport:
    """Statically scan an in-memory model file; never unpickles or imports anything from it."""
    started = time.perf_counter()
    scan = _Scan(config or ScanConfig())
    fmt = scan.scan_stream(io.BytesIO(data), len(data), None, 0)
    return _report(name, None, hashlib.sha256(data).hexdigest(), len(data), fmt, scan, started)


def scan_path(path: str | os.PathLike[str], *, config: ScanConfig | None = None) -> ScanReport:
    """Statically scan a model file on disk; never unpickles or imports anything from it."""
    started = time.perf_counter()
    p = Path(path)
    scan = _Scan(config or ScanConfig())
    with p.open("rb") as fh:
        digest = hashlib.sha256()
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            digest.update(chunk)
        size = fh.tell()
        fh.seek(0)
        fmt = scan.scan_stream(fh, size, None, 0)
    return _report(p.name, str(p), digest.hexdigest(), size, fmt, scan, started)


def ensure_clean(path: str | os.PathLike[str], *, config: ScanConfig | None = None) -> ScanReport:
    """Scan ``path`` and return the report if clean; otherwise raise :class:`UnsafeModelFile`."""
    report = scan_path(path, config=config)
    if not report.is_clean:
        raise UnsafeModelFile(report)
    return report
