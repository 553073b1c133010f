"""Builders for hostile and benign model files; they pickle (serialise) but never unpickle anything."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from pathlib import Path


class Exploit:
    """Object whose pickle calls ``os.system(command)`` when (and only if) it is unpickled."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


def touch_command(canary: Path) -> str:
    """Shell command that would create ``canary`` if the payload ever ran."""
    return f"touch {canary}"


def malicious_pickle(canary: Path, protocol: int = pickle.DEFAULT_PROTOCOL) -> bytes:
    """A pickle that runs ``touch canary`` on load."""
    return pickle.dumps(Exploit(touch_command(canary)), protocol=protocol)


def torch_zip(data_pkl: bytes, *, root: str = "archive") -> bytes:
    """A zip laid out like ``torch.save``'s, with ``data_pkl`` as ``<root>/data.pkl``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(f"{root}/data.pkl", data_pkl)
        zf.writestr(f"{root}/version", "3\n")
        zf.writestr(f"{root}/data/0", b"\x00" * 16)
    return buffer.getvalue()


def safetensors_bytes(header: dict[str, object], data: bytes, *, declared_len: int | None = None) -> bytes:
    """A safetensors file from a header dict; ``declared_len`` overrides the length prefix."""
    import json

    raw = json.dumps(header).encode()
    length = len(raw) if declared_len is None else declared_len
    return struct.pack("<Q", length) + raw + data


# Opcode-level builders for the obfuscation tests (protocol 4 unless stated).
def sbu(text: str) -> bytes:
    """SHORT_BINUNICODE."""
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


PROTO4 = b"\x80\x04"
MEMOIZE = b"\x94"
STACK_GLOBAL = b"\x93"
REDUCE = b"R"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
POP = b"0"
STOP = b"."


def binget(index: int) -> bytes:
    """BINGET."""
    return b"h" + bytes([index])
