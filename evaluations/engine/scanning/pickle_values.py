"""Inert placeholders the symbolic unpickler pushes instead of real objects, and helpers that read them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluations.engine.scanning.policy import GlobalVerdict

_SIMPLE_TYPESTR = re.compile(r"^[|<>=]?[A-Za-z]\d{0,3}$")


@dataclass(eq=False)
class Global:
    """An imported ``module.name`` with the policy's rating of it."""

    verdict: GlobalVerdict


@dataclass(eq=False)
class Obj:
    """Placeholder for whatever a call or instantiation would have returned."""

    func: Any
    args: Any
    state: Any = None


class Unknown:
    """A value the scanner cannot know statically (persistent ids, buffers, extension codes)."""


class PickleList(list):
    """A list the pickle builds (a distinct type so it is never confused with scanner data)."""


@dataclass(eq=False)
class PickleDict:
    """A dict the pickle builds, kept as pairs because its keys may be unhashable placeholders."""

    items: list[tuple[Any, Any]] = field(default_factory=list)

    def get_str(self, key: str) -> Any:
        """Last value stored under the string ``key``, or None."""
        for k, v in reversed(self.items):
            if k == key and isinstance(k, str):
                return v
        return None

    def has(self, key: str) -> bool:
        """Whether the string ``key`` was stored."""
        return any(isinstance(k, str) and k == key for k, _ in self.items)


def is_count(value: Any) -> bool:
    """A non-negative int that is not a bool (a valid dimension or offset)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def shallow(args: Any) -> list[Any]:
    """Values passed to a call, looking one level into nested tuples (``partial(os.system, ...)``)."""
    if not isinstance(args, tuple | PickleList):
        return [args]
    # One level only: deeper nesting would let a hostile pickle drive unbounded recursion here.
    return [x for a in args for x in (a if isinstance(a, tuple) else (a,))]


def static_dtype(value: Any) -> np.dtype[Any] | None:
    """Rebuild a plain numpy dtype from its pickled form ``numpy.dtype(typestr, ...)`` without unpickling."""
    if not isinstance(value, Obj) or not isinstance(value.func, Global):
        return None
    if value.func.verdict.qualified != "numpy.dtype" or not isinstance(value.args, tuple) or not value.args:
        return None
    typestr = value.args[0]
    if not isinstance(typestr, str) or not _SIMPLE_TYPESTR.match(typestr):
        return None
    # Structured dtypes carry names/fields in the BUILD state; their layout (and whether they hold objects)
    # cannot be trusted from the typestr alone.
    state = value.state
    if isinstance(state, tuple) and len(state) >= 5 and (state[3] is not None or state[4] is not None):
        return None
    try:
        return np.dtype(typestr)
    except TypeError:
        return None
