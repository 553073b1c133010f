"""Static analysis of pickle opcode streams (protocols 0-5) with a symbolic stack machine.

The scanner walks ``pickletools.genops`` and mirrors the unpickler's stack, memo and mark
stack with inert placeholders, so it can tell which callable each REDUCE/INST/OBJ/NEWOBJ
would call and what STACK_GLOBAL would import, even when the module and name strings are
fetched back from the memo. Nothing is ever imported, called or unpickled.
"""

from __future__ import annotations

import logging
import pickletools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from evaluations.engine.scanning.config import ScanConfig
from evaluations.engine.scanning.findings import Code, FindingSink, Severity
from evaluations.engine.scanning.pickle_values import (
    Global,
    Obj,
    PickleDict,
    PickleList,
    Unknown,
    is_count,
    shallow,
    static_dtype,
)
from evaluations.engine.scanning.policy import classify_global
from evaluations.engine.scanning.streams import BoundedReader

logger = logging.getLogger(__name__)

#: First pickle of a legacy (pre-1.6, non-zip) ``torch.save`` file.
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_CONSTANT_OPS = frozenset(
    "INT BININT BININT1 BININT2 LONG LONG1 LONG4 STRING BINSTRING SHORT_BINSTRING BINBYTES SHORT_BINBYTES "
    "BINBYTES8 BYTEARRAY8 UNICODE SHORT_BINUNICODE BINUNICODE BINUNICODE8 FLOAT BINFLOAT".split()
)
_WRAPPERS = frozenset(
    {
        "functools.partial",
        "functools.partialmethod",
        "builtins.map",
        "builtins.filter",
        "itertools.starmap",
        "copyreg._reconstructor",
    }
)


class MalformedPickle(Exception):
    """The opcode stream is not something the real unpickler would accept."""


class ScanLimitExceeded(Exception):
    """A configured resource cap was reached; the message says which."""


@dataclass
class PickleResult:
    """What one pickle contained, as far as the scanner needs to know."""

    value: Any
    end_offset: int
    protocol: int | None
    opcodes: int
    uses_joblib_arrays: bool = False


class _Machine:
    """Symbolic unpickler for a single pickle (up to and including STOP)."""

    def __init__(
        self,
        reader: BoundedReader,
        sink: FindingSink,
        config: ScanConfig,
        depth: int,
        follow_joblib_arrays: bool = True,
    ) -> None:
        self.reader = reader
        self.follow_joblib_arrays = follow_joblib_arrays
        self.sink = sink
        self.config = config
        self.depth = depth
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[Any, Any] = {}
        self.protocol: int | None = None
        self.opcodes = 0
        self.uses_joblib_arrays = False

    # -- stack helpers -------------------------------------------------------------------
    def pop(self) -> Any:
        if not self.stack:
            raise MalformedPickle("stack underflow")
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise MalformedPickle("MARK expected but none is open")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def push(self, value: Any) -> None:
        # A method, not ``self.stack.append``: pop_mark() swaps ``self.stack`` while arguments are evaluated.
        self.stack.append(value)

    def top(self) -> Any:
        if not self.stack:
            raise MalformedPickle("stack underflow")
        return self.stack[-1]

    # -- the run loop --------------------------------------------------------------------
    def run(self) -> PickleResult:
        ops: Iterator[tuple[pickletools.OpcodeInfo, Any, int | None]] = pickletools.genops(self.reader)
        while True:
            try:
                op, arg, pos = next(ops)
            except StopIteration:
                raise MalformedPickle("stream ended without a STOP opcode") from None
            except MalformedPickle:
                raise
            except Exception as exc:  # genops raises ValueError, struct.error, UnicodeDecodeError ...
                if self.reader.hit_limit and self.reader.capped:
                    raise ScanLimitExceeded(
                        f"pickle is larger than max_pickle_bytes={self.config.max_pickle_bytes}"
                    ) from exc
                raise MalformedPickle(str(exc)) from exc
            self.opcodes += 1
            if self.opcodes > self.config.max_pickle_opcodes:
                raise ScanLimitExceeded(f"pickle has more than max_pickle_opcodes={self.config.max_pickle_opcodes}")
            if op.name == "STOP":
                value = self.pop()
                return PickleResult(value, self.reader.tell(), self.protocol, self.opcodes, self.uses_joblib_arrays)
            self.step(op, arg, pos)

    def step(self, op: pickletools.OpcodeInfo, arg: Any, pos: int | None) -> None:  # noqa: C901, PLR0912
        name = op.name
        if name in _CONSTANT_OPS:
            self.push(arg)
        elif name == "PROTO":
            self.protocol = arg
        elif name == "FRAME" or name == "READONLY_BUFFER":
            pass
        elif name == "NONE":
            self.push(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            self.push(name == "NEWTRUE")
        elif name == "MARK":
            self.metastack.append(self.stack)
            self.stack = []
        elif name == "POP":
            if self.stack:
                self.stack.pop()
            else:
                self.pop_mark()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            self.push(self.top())
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[arg] = self.top()
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self.top()
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if arg not in self.memo:
                raise MalformedPickle(f"memo key {arg!r} read before it was written")
            self.push(self.memo[arg])
        elif name == "EMPTY_TUPLE":
            self.push(())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = [self.pop() for _ in range(n)][::-1]
            self.push(tuple(items))
        elif name == "TUPLE":
            self.push(tuple(self.pop_mark()))
        elif name == "EMPTY_LIST":
            self.push(PickleList())
        elif name == "LIST":
            self.push(PickleList(self.pop_mark()))
        elif name == "APPEND":
            value = self.pop()
            target = self.top()
            if isinstance(target, PickleList):
                target.append(value)
        elif name == "APPENDS":
            items = self.pop_mark()
            target = self.top()
            if isinstance(target, PickleList):
                target.extend(items)
        elif name == "EMPTY_DICT":
            self.push(PickleDict())
        elif name == "DICT":
            items = self.pop_mark()
            self.push(PickleDict(list(zip(items[::2], items[1::2], strict=False))))
        elif name == "SETITEM":
            value, key = self.pop(), self.pop()
            target = self.top()
            if isinstance(target, PickleDict):
                target.items.append((key, value))
        elif name == "SETITEMS":
            items = self.pop_mark()
            target = self.top()
            if isinstance(target, PickleDict):
                target.items.extend(zip(items[::2], items[1::2], strict=False))
        elif name in ("EMPTY_SET", "NEXT_BUFFER", "PERSID"):
            self.push(Unknown())
        elif name == "BINPERSID":
            self.pop()
            self.push(Unknown())
        elif name == "ADDITEMS":
            self.pop_mark()
            self.top()
        elif name == "FROZENSET":
            self.pop_mark()
            self.push(Unknown())
        elif name == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            self.push(self.import_global(module, attr, pos, name))
        elif name == "STACK_GLOBAL":
            attr, module = self.pop(), self.pop()
            if isinstance(module, str) and isinstance(attr, str):
                self.push(self.import_global(module, attr, pos, name))
            else:
                self.sink.add(
                    Severity.HIGH,
                    Code.UNRESOLVED_GLOBAL,
                    "STACK_GLOBAL imports a module/name that is computed while unpickling instead of "
                    "stored as text; this hides what gets imported and is a common obfuscation",
                    offset=pos,
                )
                self.push(Unknown())
        elif name == "INST":
            module, _, attr = str(arg).partition(" ")
            args = tuple(self.pop_mark())
            self.push(self.call(self.import_global(module, attr, pos, name), args, pos, name))
        elif name == "OBJ":
            items = self.pop_mark()
            if not items:
                raise MalformedPickle("OBJ without a class")
            self.push(self.call(items[0], tuple(items[1:]), pos, name))
        elif name == "REDUCE":
            args = self.pop()
            func = self.pop()
            self.push(self.call(func, args, pos, name))
        elif name == "NEWOBJ":
            args = self.pop()
            cls = self.pop()
            self.push(self.call(cls, args, pos, name))
        elif name == "NEWOBJ_EX":
            kwargs, args = self.pop(), self.pop()
            cls = self.pop()
            self.push(self.call(cls, (args, kwargs), pos, name))
        elif name == "BUILD":
            state = self.pop()
            self.build(self.top(), state, pos)
        elif name in ("EXT1", "EXT2", "EXT4"):
            self.sink.add(
                Severity.HIGH,
                Code.EXTENSION_OPCODE,
                f"{name} imports whatever the copyreg extension registry maps code {arg} to; the "
                "result depends on the loading environment and cannot be checked statically",
                offset=pos,
                name=str(arg),
            )
            self.push(Unknown())
        else:
            raise MalformedPickle(f"opcode {name} is not supported by the scanner")

    # -- semantic hooks ------------------------------------------------------------------
    def import_global(self, module: str, attr: str, pos: int | None, opname: str) -> Global:
        verdict = classify_global(module, attr, self.config)
        if verdict.severity is not None and verdict.code is not None:
            self.sink.add(
                verdict.severity,
                verdict.code,
                f"{opname} imports {verdict.qualified}, which {verdict.reason}"
                if verdict.severity >= Severity.CRITICAL
                else f"{opname} imports {verdict.qualified}: {verdict.reason}",
                offset=pos,
                module=verdict.module,
                name=verdict.name,
            )
        return Global(verdict)

    def call(self, func: Any, args: Any, pos: int | None, opname: str) -> Obj:
        if isinstance(func, Global):
            passed = [a for a in shallow(args) if isinstance(a, Global) and a.verdict.severity == Severity.CRITICAL]
            if passed and func.verdict.qualified in _WRAPPERS | {"builtins.getattr"}:
                inner = passed[0].verdict
                self.sink.add(
                    Severity.CRITICAL,
                    Code.CALL_CHAIN,
                    f"{opname} calls {func.verdict.qualified} on {inner.qualified}, which {inner.reason}",
                    offset=pos,
                    module=inner.module,
                    name=inner.name,
                )
        elif isinstance(func, Obj | Unknown):
            self.sink.add(
                Severity.HIGH,
                Code.DYNAMIC_CALL,
                f"{opname} calls a value computed while unpickling (for example the result of getattr or "
                "of another call) rather than an imported global",
                offset=pos,
            )
        return Obj(func, args)

    def build(self, target: Any, state: Any, pos: int | None) -> None:
        if isinstance(target, Global):
            self.sink.add(
                Severity.HIGH,
                Code.BUILD_ON_GLOBAL,
                f"BUILD sets attributes on the imported {target.verdict.qualified} itself, which can "
                "monkey-patch library code for everything that runs afterwards",
                offset=pos,
                module=target.verdict.module,
                name=target.verdict.name,
            )
            return
        if not isinstance(target, Obj):
            return
        target.state = state
        func = target.func
        if isinstance(func, Global) and func.verdict.qualified == "joblib.numpy_pickle.NumpyArrayWrapper":
            self.uses_joblib_arrays = True
            if self.follow_joblib_arrays:
                self.skip_joblib_array(state, pos)

    def skip_joblib_array(self, state: Any, pos: int | None) -> None:
        """Step over the array bytes joblib writes right after a NumpyArrayWrapper's BUILD."""
        if not isinstance(state, PickleDict):
            raise MalformedPickle("joblib NumpyArrayWrapper without a state dict")
        dtype = static_dtype(state.get_str("dtype"))
        shape = state.get_str("shape")
        if dtype is None or not isinstance(shape, tuple) or not all(is_count(d) for d in shape):
            raise MalformedPickle("cannot determine the layout of a joblib array statically")
        if dtype.hasobject:
            # joblib pickles object arrays as a nested pickle stream, read by a fresh Unpickler.
            if self.depth + 1 > self.config.max_nesting_depth:
                raise ScanLimitExceeded(
                    f"joblib arrays nested deeper than max_nesting_depth={self.config.max_nesting_depth}"
                )
            nested = _Machine(self.reader, self.sink, self.config, self.depth + 1)
            nested.run()
            self.sink.add(
                Severity.LOW,
                Code.PICKLED_ARRAY,
                "joblib stores an object-dtype array as a nested pickle (scanned)",
                offset=pos,
            )
            return
        if state.has("numpy_array_alignment_bytes"):
            padding = self.reader.read(1)
            if len(padding) != 1 or self.reader.skip(padding[0]) != padding[0]:
                raise MalformedPickle("joblib array padding runs past the end of the stream")
        count = 1
        for d in shape:
            count *= int(d)
        nbytes = count * dtype.itemsize
        if nbytes > self.reader.remaining:
            raise ScanLimitExceeded(f"joblib array claims {nbytes} bytes but only {self.reader.remaining} remain")
        if self.reader.skip(nbytes) != nbytes:
            raise MalformedPickle("joblib array data is truncated")


def scan_pickle(
    reader: BoundedReader, sink: FindingSink, config: ScanConfig, *, depth: int = 0, follow_joblib_arrays: bool = True
) -> PickleResult:
    """Walk one pickle (up to STOP) from ``reader``, adding findings to ``sink``; raises on malformed input.

    With ``follow_joblib_arrays`` the walk reads like ``joblib.load`` (array bytes after a NumpyArrayWrapper
    are skipped); without it, like ``pickle.load``/``torch.load``, which would parse those bytes as opcodes.
    """
    return _Machine(reader, sink, config, depth, follow_joblib_arrays).run()


def looks_like_protocol2plus(head: bytes) -> bool:
    """True when ``head`` starts with a PROTO opcode for protocol 2-5."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def scan_pickle_sequence(
    reader: BoundedReader, sink: FindingSink, config: ScanConfig, *, depth: int = 0, follow_joblib_arrays: bool = True
) -> list[PickleResult]:
    """Scan one or more back-to-back pickles (legacy torch writes five) and report how the stream ends.

    The first pickle must be well formed. Later data is scanned as a pickle only when it starts with a
    PROTO opcode; if it then fails to parse it is treated as raw trailing data (legacy torch appends raw
    storage bytes), which no loader unpickles, while findings seen before the failure are kept.
    """
    results: list[PickleResult] = []
    try:
        results.append(scan_pickle(reader, sink, config, depth=depth, follow_joblib_arrays=follow_joblib_arrays))
    except MalformedPickle as exc:
        sink.add(
            Severity.HIGH,
            Code.MALFORMED_PICKLE,
            f"the pickle stream is malformed ({exc}); no unpickler would load it as-is, so it cannot be vouched for",
            offset=reader.tell(),
        )
        return results
    while reader.remaining > 0 and len(results) < config.max_pickles_per_stream:
        start = reader.tell()
        head = reader.peek_bytes(2)
        if not looks_like_protocol2plus(head):
            break
        try:
            results.append(scan_pickle(reader, sink, config, depth=depth, follow_joblib_arrays=follow_joblib_arrays))
        except MalformedPickle:
            logger.debug("data after pickle %d at offset %d is not a pickle", len(results), start)
            break
    if reader.remaining > 0:
        sink.add(
            Severity.INFO,
            Code.TRAILING_DATA,
            f"{len(results)} pickle(s) followed by data that is not unpickled",
            offset=results[-1].end_offset,
            technique=None,
        )
    return results
