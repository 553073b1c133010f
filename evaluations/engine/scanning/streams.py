"""A read-only, bounded view over a binary stream, so hostile length fields cannot exhaust memory."""

from __future__ import annotations

from typing import BinaryIO

_CHUNK = 1024 * 1024


class BoundedReader:
    """File-like reader that never reads more than ``limit`` bytes from ``stream``.

    ``pickletools.genops`` trusts the length prefixes of BINBYTES8 and friends and calls
    ``read(n)`` with them; capping ``n`` at what is left keeps a forged length from
    allocating gigabytes. ``tell()`` reports offsets from the start of the scanned member.
    """

    def __init__(self, stream: BinaryIO, *, limit: int, line_limit: int, start: int = 0, capped: bool = False) -> None:
        self._stream = stream
        #: True when ``limit`` is a configured cap smaller than the data, not the data's real end.
        self.capped = capped
        self._limit = limit
        self._line_limit = line_limit
        self._pos = start
        self._start = start
        self.hit_limit = False

    @property
    def remaining(self) -> int:
        """Bytes that may still be read."""
        return self._limit - (self._pos - self._start)

    def tell(self) -> int:
        """Offset of the next byte, relative to the start of the member."""
        return self._pos

    def read(self, n: int = -1) -> bytes:
        """Read at most ``n`` bytes, and never past the limit."""
        budget = self.remaining
        if n is None or n < 0:
            n = budget
        elif n > budget:
            # The caller wanted more than the cap allows: remember it so errors can say "limit", not "truncated".
            self.hit_limit = True
            n = budget
        data = self._stream.read(n) if n > 0 else b""
        self._pos += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        """Read one line of at most ``line_limit`` bytes (protocol 0 opcodes are newline-terminated)."""
        cap = min(self._line_limit, self.remaining)
        if size is not None and size >= 0:
            cap = min(cap, size)
        data = self._stream.readline(cap) if cap > 0 else b""
        self._pos += len(data)
        return data

    def peek_bytes(self, n: int) -> bytes:
        """Read ``n`` bytes and step back, for sniffing magic numbers; needs a seekable stream."""
        here = self._stream.tell()
        data = self._stream.read(min(n, max(self.remaining, 0)))
        self._stream.seek(here)
        return data

    def skip(self, n: int) -> int:
        """Advance ``n`` bytes without keeping them; returns how many were actually skipped."""
        skipped = 0
        while skipped < n:
            chunk = self.read(min(_CHUNK, n - skipped))
            if not chunk:
                break
            skipped += len(chunk)
        return skipped
