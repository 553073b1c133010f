"""Resource caps and policy knobs for model-file scanning."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

_MIB = 1024 * 1024
_GIB = 1024 * _MIB


@dataclass(frozen=True)
class ScanConfig:
    """Frozen, validated limits for one scan; the defaults suit models up to a few GiB.

    Every cap exists because a hostile file can claim sizes it does not have (zip bombs,
    absurd headers) to exhaust memory, disk or time on the scanning worker.
    """

    #: Sum of the declared uncompressed sizes of all members of one archive.
    max_total_uncompressed_bytes: int = 8 * _GIB
    #: Uncompressed/compressed ratio above which a member is treated as a bomb ...
    max_compression_ratio: float = 200.0
    #: ... once it is at least this large (tiny, highly compressible members are normal).
    compression_ratio_min_bytes: int = 1 * _MIB
    #: Members in one archive.
    max_members: int = 10_000
    #: Containers inside containers (zip in zip, compressed pickle in zip, ...).
    max_nesting_depth: int = 3
    #: Output of decompressing a zlib/gzip/bz2/lzma stream (joblib ``compress=``), held in memory.
    max_decompressed_bytes: int = 2 * _GIB
    #: A single pickle stream: bigger pickles are refused rather than walked.
    max_pickle_bytes: int = 2 * _GIB
    #: Consecutive pickles in one stream (legacy torch writes five).
    max_pickles_per_stream: int = 16
    #: Opcodes walked per pickle; each costs time and a little memory in the symbolic stack machine.
    max_pickle_opcodes: int = 20_000_000
    #: Longest text line a protocol-0 opcode may carry.
    max_pickle_line_bytes: int = 1 * _MIB
    #: safetensors JSON header.
    max_safetensors_header_bytes: int = 100 * _MIB
    #: ``.npy`` header (numpy's own default is 10 000).
    max_npy_header_bytes: int = 64 * 1024
    #: skops ``schema.json``.
    max_skops_schema_bytes: int = 64 * _MIB
    #: Extra globals (``module.name``) to treat as safe, e.g. a team's own vetted classes.
    extra_safe_globals: frozenset[str] = frozenset()
    #: Module prefixes whose globals are reported as INFO instead of MEDIUM, e.g. ``("sklearn.",)``.
    trusted_module_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in {"extra_safe_globals", "trusted_module_prefixes"}:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"ScanConfig.{f.name} must be a positive number, got {value!r}.")
        if self.max_compression_ratio < 1:
            raise ValueError("ScanConfig.max_compression_ratio must be at least 1.")
        # Accept any iterable of strings but store immutable, hashable containers.
        object.__setattr__(self, "extra_safe_globals", frozenset(self.extra_safe_globals))
        object.__setattr__(self, "trusted_module_prefixes", tuple(self.trusted_module_prefixes))
        for item in (*self.extra_safe_globals, *self.trusted_module_prefixes):
            if not isinstance(item, str) or not item:
                raise ValueError(f"ScanConfig globals and prefixes must be non-empty strings, got {item!r}.")
        for item in self.extra_safe_globals:
            if "." not in item:
                raise ValueError(f"ScanConfig.extra_safe_globals entries look like 'module.name', got {item!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation, recorded in every report."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["extra_safe_globals"] = sorted(self.extra_safe_globals)
        out["trusted_module_prefixes"] = list(self.trusted_module_prefixes)
        return out
