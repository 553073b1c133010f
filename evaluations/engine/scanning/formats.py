"""Format detection by magic bytes, and the single-file formats: npy, safetensors, compressed streams."""

from __future__ import annotations

import bz2
import enum
import json
import lzma
import struct
import zlib
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from evaluations.engine.scanning.config import ScanConfig
from evaluations.engine.scanning.findings import Code, FindingSink, Severity
from evaluations.engine.scanning.pickle_scan import looks_like_protocol2plus


class Kind(enum.StrEnum):
    """What the first bytes of a file say it is."""

    EMPTY = "empty"
    ZIP = "zip"
    NPY = "npy"
    PICKLE = "pickle"
    MAYBE_PICKLE = "maybe-pickle"  # protocol 0/1 pickles have no header; confirmed by parsing
    SAFETENSORS = "safetensors"
    ZLIB = "zlib"
    GZIP = "gzip"
    BZ2 = "bz2"
    XZ = "xz"
    LZMA = "lzma"
    LZ4 = "lz4"
    JOBLIB_LEGACY = "joblib-legacy"
    GGUF = "gguf"
    HDF5 = "hdf5"
    UNKNOWN = "unknown"


COMPRESSED_KINDS = frozenset({Kind.ZLIB, Kind.GZIP, Kind.BZ2, Kind.XZ, Kind.LZMA})
UNSUPPORTED_KINDS = {Kind.GGUF: "GGUF", Kind.HDF5: "HDF5 (Keras .h5)"}

# Opcode bytes a protocol 0/1 pickle can start with (anything that pushes or marks).
_PICKLE01_FIRST = frozenset(b"(NIJKLMFSTUVXG]})cihjpq\x88\x89")

#: Bytes per element of each safetensors dtype, in bits so that sub-byte float types fit.
SAFETENSORS_DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "C64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}


def detect_kind(head: bytes, size: int) -> Kind:
    """Classify a stream from its first 16 bytes (extensions are ignored: they are easy to fake)."""
    if size == 0:
        return Kind.EMPTY
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return Kind.ZIP
    if head[:6] == b"\x93NUMPY":
        return Kind.NPY
    if looks_like_protocol2plus(head):
        return Kind.PICKLE
    if head[:2] == b"\x1f\x8b":
        return Kind.GZIP
    if head[:3] == b"BZh" and head[3:4].isdigit():
        return Kind.BZ2
    if head[:6] == b"\xfd7zXZ\x00":
        return Kind.XZ
    if head[:1] == b"\x5d" and head[1:3] == b"\x00\x00":
        return Kind.LZMA
    if len(head) >= 2 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0:
        return Kind.ZLIB
    if head[:4] == b"\x04\x22\x4d\x18":
        return Kind.LZ4
    if head[:2] == b"ZF":
        return Kind.JOBLIB_LEGACY
    if head[:4] == b"GGUF":
        return Kind.GGUF
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return Kind.HDF5
    if size >= 10 and head[8:9] == b"{":
        return Kind.SAFETENSORS
    if head[:1] and head[0] in _PICKLE01_FIRST:
        return Kind.MAYBE_PICKLE
    return Kind.UNKNOWN


def decompress(kind: Kind, data: bytes, cap: int) -> bytes:
    """Decompress ``data`` but stop with ``OverflowError`` once the output would exceed ``cap`` bytes."""
    if kind is Kind.BZ2:
        return _drain(bz2.BZ2Decompressor(), data, cap)
    if kind in (Kind.XZ, Kind.LZMA):
        return _drain(lzma.LZMADecompressor(lzma.FORMAT_XZ if kind is Kind.XZ else lzma.FORMAT_ALONE), data, cap)
    out = bytearray()
    wbits = 31 if kind is Kind.GZIP else 15
    pending = data
    # gzip allows several members back to back; zlib streams are single.
    while pending:
        d = zlib.decompressobj(wbits)
        chunk = d.decompress(pending, cap + 1 - len(out))
        out += chunk
        if len(out) > cap:
            raise OverflowError(cap)
        if not d.eof:
            if d.unconsumed_tail:
                raise OverflowError(cap)
            raise ValueError("compressed stream is truncated")
        pending = d.unused_data if kind is Kind.GZIP else b""
    return bytes(out)


def _drain(d: Any, data: bytes, cap: int) -> bytes:
    out = d.decompress(data, max_length=cap + 1)
    if len(out) > cap:
        raise OverflowError(cap)
    if not d.eof:
        raise ValueError("compressed stream is truncated")
    return out


def read_npy_header(stream: BinaryIO, config: ScanConfig) -> tuple[tuple[int, ...], np.dtype[Any], int]:
    """Parse an ``.npy`` header with numpy's own reader (``ast.literal_eval``, no pickle); returns its end offset."""
    version = npy_format.read_magic(stream)
    limit = config.max_npy_header_bytes
    if version == (1, 0):
        shape, _fortran, dtype = npy_format.read_array_header_1_0(stream, max_header_size=limit)
    elif version == (2, 0):
        shape, _fortran, dtype = npy_format.read_array_header_2_0(stream, max_header_size=limit)
    else:
        # Version 3.0 only changes the header encoding to UTF-8; numpy exposes no public reader for it.
        reader = getattr(npy_format, "_read_array_header", None)
        if reader is None:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, _fortran, dtype = reader(stream, version, max_header_size=limit)
    return tuple(int(d) for d in shape), dtype, stream.tell()


def check_npy_size(shape: tuple[int, ...], dtype: np.dtype[Any], available: int) -> str | None:
    """Return why an ``.npy`` header is impossible for the bytes that follow it, or None."""
    count = 1
    for d in shape:
        count *= d
    needed = count * dtype.itemsize
    if needed > available:
        return f"the header claims shape {shape} of {dtype} ({needed} bytes) but only {available} bytes follow"
    return None


def validate_safetensors(stream: BinaryIO, size: int, sink: FindingSink, config: ScanConfig) -> None:
    """Check a safetensors header against the spec without reading tensor data."""

    def reject(message: str) -> None:
        sink.add(Severity.HIGH, Code.INVALID_SAFETENSORS, message, technique=None)

    raw_len = stream.read(8)
    if len(raw_len) < 8:
        reject("the file is shorter than the 8-byte safetensors header length")
        return
    (header_len,) = struct.unpack("<Q", raw_len)
    if header_len > config.max_safetensors_header_bytes:
        reject(
            f"the header length {header_len} exceeds max_safetensors_header_bytes="
            f"{config.max_safetensors_header_bytes}; real headers are a few kilobytes"
        )
        return
    if header_len > size - 8:
        reject(f"the header length {header_len} runs past the end of the {size}-byte file")
        return
    raw = stream.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reject(f"the header is not valid UTF-8 JSON ({exc})")
        return
    if not isinstance(header, dict):
        reject("the header must be a JSON object mapping tensor names to their dtype, shape and offsets")
        return
    for problem in _safetensors_problems(header, data_len=size - 8 - header_len):
        reject(problem)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            # Two parsers could pick different entries for the same tensor; refuse the ambiguity.
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _safetensors_problems(header: dict[str, Any], *, data_len: int) -> list[str]:
    problems: list[str] = []
    metadata = header.get("__metadata__")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        problems.append("__metadata__ must map strings to strings")
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            problems.append(f"tensor {name!r} must have exactly dtype, shape and data_offsets")
            continue
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in SAFETENSORS_DTYPE_BITS:
            problems.append(f"tensor {name!r} has unknown dtype {dtype!r}")
            continue
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            problems.append(f"tensor {name!r} has an invalid shape {shape!r}; use a list of non-negative ints")
            continue
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
            problems.append(f"tensor {name!r} has invalid data_offsets {offsets!r}; use [begin, end]")
            continue
        begin, end = offsets
        count = 1
        for d in shape:
            count *= d
        bits = count * SAFETENSORS_DTYPE_BITS[dtype]
        if end < begin or end - begin != (bits + 7) // 8:
            problems.append(
                f"tensor {name!r} spans {end - begin} bytes but shape {shape} of {dtype} needs {(bits + 7) // 8}"
            )
            continue
        spans.append((begin, end, name))
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin < cursor:
            problems.append(f"tensor {name!r} overlaps the previous tensor (offset {begin} < {cursor})")
        elif begin > cursor:
            problems.append(f"tensor {name!r} leaves a gap at bytes {cursor}..{begin}; tensors must be contiguous")
        cursor = max(cursor, end)
    if cursor > data_len:
        problems.append(f"tensor data ends at byte {cursor} but the file holds only {data_len} data bytes")
    elif spans and cursor != data_len:
        problems.append(f"the file has {data_len - cursor} unexplained bytes after the last tensor")
    return problems


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
