"""Zip containers: torch (``archive/data.pkl``), TorchScript, ``.npz``, skops; bomb checks before any read."""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from evaluations.engine.scanning.config import ScanConfig
from evaluations.engine.scanning.findings import Code, Finding, FindingSink, Severity
from evaluations.engine.scanning.pickle_scan import looks_like_protocol2plus
from evaluations.engine.scanning.skops_scan import audit_skops

#: (stream, size, member label, depth, strict) -> format label. Strict members must be understood;
#: sniffed ones that turn out not to parse are only noted.
MemberScanner = Callable[[BinaryIO, int, str, int, bool], str]

#: Members loaders open by name: they must parse as what their name says.
_NAMED_SUFFIXES = (
    ".pkl",
    ".pickle",
    ".debug_pkl",
    ".joblib",
    ".pt",
    ".pth",
    ".ckpt",
    ".npy",
    ".npz",
    ".skops",
    ".safetensors",
)
#: Raw tensor storage inside a torch archive; torch reads these bytes directly and never unpickles them.
_TORCH_STORAGE = re.compile(r"(^|/)data/\d+$")


@dataclass(frozen=True)
class ZipLayout:
    """What kind of zip this is, judged from its member names."""

    kind: str
    root: str


def layout_of(names: list[str]) -> ZipLayout:
    """Recognise skops, torch, TorchScript and npz archives from their member names."""
    if "schema.json" in names:
        return ZipLayout("skops", "")
    pkl_roots = {n[: -len("data.pkl")] for n in names if n == "data.pkl" or n.endswith("/data.pkl")}
    for root in sorted(pkl_roots, key=len):
        if f"{root}constants.pkl" in names or any(n.startswith(f"{root}code/") for n in names):
            return ZipLayout("torchscript", root)
        return ZipLayout("torch", root)
    files = [n for n in names if not n.endswith("/")]
    if files and all(n.endswith(".npy") for n in files):
        return ZipLayout("npz", "")
    return ZipLayout("zip", "")


def bomb_problems(infos: list[zipfile.ZipInfo], config: ScanConfig) -> list[str]:
    """Reasons to refuse an archive before decompressing anything (sizes are the declared ones, which
    ``zipfile`` enforces while reading, so a member cannot inflate past what it declares)."""
    problems: list[str] = []
    if len(infos) > config.max_members:
        problems.append(f"the archive has {len(infos)} members, more than max_members={config.max_members}")
    total = sum(i.file_size for i in infos)
    if total > config.max_total_uncompressed_bytes:
        problems.append(
            f"members expand to {total} bytes, more than max_total_uncompressed_bytes="
            f"{config.max_total_uncompressed_bytes} (zip bomb?)"
        )
    for info in infos:
        if info.file_size < config.compression_ratio_min_bytes:
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > config.max_compression_ratio:
            problems.append(
                f"member {info.filename!r} expands {ratio:.0f}x ({info.compress_size} -> "
                f"{info.file_size} bytes), more than max_compression_ratio="
                f"{config.max_compression_ratio:g} (zip bomb?)"
            )
    return problems


def scan_zip(
    stream: BinaryIO,
    *,
    label: str | None,
    depth: int,
    config: ScanConfig,
    findings: list[Finding],
    scan_member: MemberScanner,
) -> str:
    """Scan every pickle-bearing member of a zip archive; returns the archive's format label."""
    sink = FindingSink(label, findings)
    try:
        zf = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        sink.add(Severity.HIGH, Code.MALFORMED_ARCHIVE, f"the zip archive cannot be read ({exc})", technique=None)
        return "zip"
    with zf:
        infos = zf.infolist()
        problems = bomb_problems(infos, config)
        for problem in problems:
            sink.add(Severity.HIGH, Code.RESOURCE_LIMIT, f"rejected: {problem}", technique=None)
        if problems:
            return "zip"
        names = [i.filename for i in infos]
        layout = layout_of(names)
        _check_names(names, sink)
        for info in infos:
            if info.is_dir():
                continue
            member = f"{label}::{info.filename}" if label else info.filename
            if info.flag_bits & 0x1:
                FindingSink(member, findings).add(
                    Severity.HIGH,
                    Code.ENCRYPTED_MEMBER,
                    "the member is encrypted and cannot be scanned",
                    technique=None,
                )
                continue
            if layout.kind in ("torch", "torchscript") and _TORCH_STORAGE.search(info.filename):
                continue
            strict = info.filename.lower().endswith(_NAMED_SUFFIXES)
            try:
                if not strict and not _sniff(zf, info):
                    continue
                with zf.open(info) as member_stream:
                    scan_member(member_stream, info.file_size, member, depth + 1, strict)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, OverflowError, NotImplementedError) as exc:
                FindingSink(member, findings).add(
                    Severity.HIGH,
                    Code.MALFORMED_ARCHIVE,
                    f"the member cannot be decompressed ({exc})",
                    technique=None,
                )
        if layout.kind == "skops":
            _audit_skops_archive(stream, zf, sink, config)
        if layout.kind == "torchscript":
            sink.add(
                Severity.INFO,
                Code.UNPARSED_MEMBER,
                "TorchScript code under code/ is compiled by TorchScript, not imported by Python; it is not analysed",
                technique=None,
            )
        if layout.kind == "zip":
            sink.add(
                Severity.HIGH,
                Code.UNSUPPORTED_FORMAT,
                "the zip archive is not a torch, TorchScript, npz or skops file; its pickle-like members "
                "were scanned but the scanner cannot vouch for the rest",
                technique=None,
            )
        return layout.kind


def _audit_skops_archive(stream: BinaryIO, zf: zipfile.ZipFile, sink: FindingSink, config: ScanConfig) -> None:
    # skops' audit API takes the archive's bytes; skops files hold small estimators, but cap it anyway.
    stream.seek(0)
    data = stream.read(config.max_decompressed_bytes + 1)
    if len(data) > config.max_decompressed_bytes:
        sink.add(
            Severity.HIGH,
            Code.RESOURCE_LIMIT,
            f"the skops file is larger than max_decompressed_bytes={config.max_decompressed_bytes}",
            technique=None,
        )
        return
    audit_skops(data, zf, sink, config)


def _sniff(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Whether an unnamed member starts like something a loader could unpickle."""
    with zf.open(info) as fh:
        head = fh.read(8)
    return looks_like_protocol2plus(head) or head[:6] == b"\x93NUMPY" or head[:4] == b"PK\x03\x04"


def _check_names(names: list[str], sink: FindingSink) -> None:
    for name, count in Counter(names).items():
        if count > 1:
            # zipfile and torch's reader may pick different copies; every copy is scanned.
            sink.add(
                Severity.MEDIUM,
                Code.DUPLICATE_MEMBER,
                f"member {name!r} appears {count} times; loaders may read a different copy than reviewers",
                technique=None,
            )
    for name in names:
        normalized = posixpath.normpath(name.replace("\\", "/"))
        if name.startswith(("/", "\\")) or normalized.startswith("..") or ":" in name.split("/")[0]:
            sink.add(
                Severity.LOW,
                Code.UNSAFE_MEMBER_NAME,
                f"member name {name!r} would escape the target directory if the archive were extracted",
                technique=None,
            )
