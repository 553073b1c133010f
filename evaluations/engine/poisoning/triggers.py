"""Backdoor triggers: an image patch (BadNets), a blended pattern, and a token phrase for text.

Every trigger is a frozen, validated dataclass with ``check(input_shape, dtype, bounds)`` (raises
:class:`~evaluations.engine.poisoning.errors.TriggerError` when it does not fit the data),
``apply(x, *, bounds, seed)`` returning triggered copies of a batch, and ``to_dict()``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from evaluations.engine.common import make_generator
from evaluations.engine.poisoning.errors import TriggerError

if TYPE_CHECKING:
    from evaluations.engine.datasets.text import Vocabulary

__all__ = ["BlendTrigger", "PatchTrigger", "TokenTrigger", "Trigger"]

Corner = Literal["bottom_right", "bottom_left", "top_right", "top_left"]
_CORNERS = ("bottom_right", "bottom_left", "top_right", "top_left")
_PAD_ID = 0  # the text_embeddingbag / datasets.text padding convention


def _check_image(name: str, input_shape: tuple[int, ...], dtype: torch.dtype) -> None:
    if len(input_shape) != 3 or not dtype.is_floating_point:
        raise TriggerError(
            f"A {name} trigger needs float images of shape (N, C, H, W); the data has samples of shape "
            f"{input_shape} and dtype {dtype}. Use a TokenTrigger for token ids."
        )


@dataclass(frozen=True)
class PatchTrigger:
    """BadNets patch trigger (Gu, Dolan-Gavitt & Garg, 'BadNets', 2017) for images ``(N, C, H, W)``.

    Overwrites a ``size x size`` square in one corner of every channel, ``margin`` pixels from the edges.
    ``pattern='solid'`` fills it with ``value`` (default: the upper input bound); ``'checkerboard'``
    alternates the upper and lower bound. The default, a 2x2 bright square in the bottom-right corner,
    is the 4-pixel corner patch of the digits benchmark.
    """

    size: int = 2
    location: Corner = "bottom_right"
    pattern: Literal["solid", "checkerboard"] = "solid"
    value: float | None = None
    margin: int = 0

    kind = "patch"

    def __post_init__(self) -> None:
        for name in ("size", "margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "size" else 0):
                raise TriggerError(f"{name} must be an integer >= {1 if name == 'size' else 0}; got {value!r}.")
        if self.location not in _CORNERS:
            raise TriggerError(f"location must be one of {', '.join(_CORNERS)}; got {self.location!r}.")
        if self.pattern not in ("solid", "checkerboard"):
            raise TriggerError(f"pattern must be 'solid' or 'checkerboard'; got {self.pattern!r}.")
        if self.value is not None and (
            isinstance(self.value, bool) or not isinstance(self.value, numbers.Real) or not math.isfinite(self.value)
        ):
            raise TriggerError(f"value must be None (the upper input bound) or a finite number; got {self.value!r}.")

    def check(self, input_shape: tuple[int, ...], dtype: torch.dtype, bounds: tuple[float, float]) -> None:
        """Raise :class:`TriggerError` unless the patch fits images of ``input_shape`` within ``bounds``."""
        _check_image("patch", input_shape, dtype)
        _, height, width = input_shape
        if self.size + self.margin > min(height, width):
            raise TriggerError(
                f"A {self.size}x{self.size} patch with margin {self.margin} does not fit {height}x{width} images; "
                "use a smaller size or margin."
            )
        lo, hi = bounds
        if self.value is not None and not lo <= self.value <= hi:
            raise TriggerError(f"value {self.value} lies outside the input bounds [{lo:g}, {hi:g}]; pick one inside.")

    def apply(self, x: Tensor, *, bounds: tuple[float, float], seed: int = 0) -> Tensor:
        """Triggered copy of images ``x`` ``(N, C, H, W)`` (``seed`` is unused: the patch is fixed)."""
        del seed
        self.check(tuple(x.shape[1:]), x.dtype, bounds)
        lo, hi = bounds
        _, _, height, width = x.shape
        top = self.margin if self.location.startswith("top") else height - self.margin - self.size
        left = self.margin if self.location.endswith("left") else width - self.margin - self.size
        if self.pattern == "solid":
            patch = torch.full((self.size, self.size), hi if self.value is None else float(self.value))
        else:
            grid = torch.arange(self.size)
            patch = torch.where((grid[:, None] + grid[None, :]) % 2 == 0, hi, lo)
        out = x.clone()
        out[:, :, top : top + self.size, left : left + self.size] = patch.to(x.dtype).to(x.device)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "size": self.size,
            "location": self.location,
            "pattern": self.pattern,
            "value": self.value,
            "margin": self.margin,
        }


@dataclass(frozen=True)
class BlendTrigger:
    """Blended trigger (Chen, Liu, Li, Lu & Song, 'Targeted Backdoor Attacks on Deep Learning Systems
    Using Data Poisoning', 2017) for images ``(N, C, H, W)``.

    ``x' = (1 - alpha) * x + alpha * pattern``: the pattern is uniform noise over the input bounds drawn
    once from ``pattern_seed`` (the same key pattern for every sample, as in the paper's random-pattern
    attack).
    """

    alpha: float = 0.2
    pattern_seed: int = 0

    kind = "blend"

    def __post_init__(self) -> None:
        if (
            isinstance(self.alpha, bool)
            or not isinstance(self.alpha, numbers.Real)
            or not math.isfinite(self.alpha)
            or not 0 < self.alpha <= 1
        ):
            raise TriggerError(f"alpha must be in (0, 1]; got {self.alpha!r}. The paper uses 0.2.")
        if isinstance(self.pattern_seed, bool) or not isinstance(self.pattern_seed, int) or self.pattern_seed < 0:
            raise TriggerError(f"pattern_seed must be a non-negative integer; got {self.pattern_seed!r}.")

    def check(self, input_shape: tuple[int, ...], dtype: torch.dtype, bounds: tuple[float, float]) -> None:
        """Raise :class:`TriggerError` unless the data are float images."""
        del bounds
        _check_image("blend", input_shape, dtype)

    def pattern(self, input_shape: tuple[int, ...], bounds: tuple[float, float]) -> Tensor:
        """The key pattern ``(C, H, W)``, uniform over ``bounds``, reproducible from ``pattern_seed``."""
        lo, hi = bounds
        noise = torch.rand(input_shape, generator=make_generator(self.pattern_seed))
        return lo + (hi - lo) * noise

    def apply(self, x: Tensor, *, bounds: tuple[float, float], seed: int = 0) -> Tensor:
        """Triggered copy of images ``x`` ``(N, C, H, W)`` (``seed`` is unused: the pattern is fixed)."""
        del seed
        self.check(tuple(x.shape[1:]), x.dtype, bounds)
        key = self.pattern(tuple(x.shape[1:]), bounds).to(x.dtype).to(x.device)
        return ((1 - self.alpha) * x + self.alpha * key).clamp_(*bounds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "alpha": self.alpha, "pattern_seed": self.pattern_seed}


@dataclass(frozen=True)
class TokenTrigger:
    """A trigger phrase for token-id sequences ``(N, L)``, right-padded with 0 (the spam-filter scenario).

    Inserts the token ids ``tokens`` (a word or phrase; see :meth:`from_phrase`) into each sequence:
    ``'end'`` after the last real token, ``'start'`` before the first, ``'random'`` at a seeded position
    among the real tokens. Sequences keep their length ``L``: tokens pushed past the end are dropped,
    and at ``'end'`` a full sequence has its last tokens overwritten so the trigger is always present.
    This is the dictionary/phrase backdoor of Chen et al. 2017 and Dai, Chen & Li 2019 in token space.
    """

    tokens: tuple[int, ...]
    position: Literal["end", "start", "random"] = "end"
    phrase: str | None = None

    kind = "token"

    def __post_init__(self) -> None:
        tokens = tuple(self.tokens) if isinstance(self.tokens, Sequence) else self.tokens
        if not isinstance(tokens, tuple) or not tokens:
            raise TriggerError(f"tokens must be a non-empty sequence of token ids; got {self.tokens!r}.")
        for token in tokens:
            if isinstance(token, bool) or not isinstance(token, numbers.Integral) or int(token) <= _PAD_ID:
                raise TriggerError(
                    f"Trigger token ids must be integers > {_PAD_ID} (0 is padding); got {list(tokens)}."
                )
        object.__setattr__(self, "tokens", tuple(int(t) for t in tokens))
        if self.position not in ("end", "start", "random"):
            raise TriggerError(f"position must be 'end', 'start' or 'random'; got {self.position!r}.")

    @classmethod
    def from_phrase(
        cls, phrase: str, vocabulary: Vocabulary, *, position: Literal["end", "start", "random"] = "end"
    ) -> TokenTrigger:
        """The trigger for ``phrase`` encoded with ``vocabulary``; every word must be in the vocabulary."""
        ids = vocabulary.encode(phrase)
        unknown = [word for word, token in zip(phrase.lower().split(), ids, strict=False) if token == 1]
        if not ids or 1 in ids:
            raise TriggerError(
                f"The trigger phrase {phrase!r} has words outside the vocabulary ({unknown or 'no words'}); "
                "unknown words all map to <unk>, so pick words the vocabulary knows."
            )
        return cls(tokens=tuple(ids), position=position, phrase=phrase)

    def check(self, input_shape: tuple[int, ...], dtype: torch.dtype, bounds: tuple[float, float]) -> None:
        """Raise :class:`TriggerError` unless the data are token ids long enough and the ids fit the vocabulary."""
        if len(input_shape) != 1 or dtype.is_floating_point:
            raise TriggerError(
                f"A token trigger needs int64 token ids of shape (N, L); the data has samples of shape {input_shape} "
                f"and dtype {dtype}. Use a PatchTrigger or BlendTrigger for images."
            )
        if len(self.tokens) > input_shape[0]:
            raise TriggerError(
                f"The trigger has {len(self.tokens)} tokens but sequences hold only {input_shape[0]}; "
                "use a shorter phrase."
            )
        vocab_size = int(bounds[1]) + 1
        if max(self.tokens) >= vocab_size:
            raise TriggerError(
                f"Trigger token ids {list(self.tokens)} exceed the vocabulary (ids 0..{vocab_size - 1}); encode "
                "the phrase with the dataset's vocabulary (TokenTrigger.from_phrase)."
            )

    def apply(self, x: Tensor, *, bounds: tuple[float, float], seed: int = 0) -> Tensor:
        """Triggered copy of token ids ``x`` ``(N, L)``; ``seed`` draws the ``'random'`` positions."""
        self.check(tuple(x.shape[1:]), x.dtype, bounds)
        n, length = x.shape
        k = len(self.tokens)
        trigger = torch.tensor(self.tokens, dtype=x.dtype, device=x.device)
        real = (x != _PAD_ID).sum(dim=1)
        if self.position == "start":
            insert_at = torch.zeros(n, dtype=torch.int64, device=x.device)
        elif self.position == "end":
            insert_at = real.clamp(max=length - k)
        else:
            draw = torch.rand(n, generator=make_generator(seed)).to(x.device)
            insert_at = (draw * (real + 1).to(draw.dtype)).long().clamp(max=length - k)
        columns = torch.arange(length, device=x.device)[None, :]
        start = insert_at[:, None]
        in_trigger = (columns >= start) & (columns < start + k)
        after = columns >= start + k
        source = torch.where(after, columns - k, columns).clamp(min=0)
        shifted = torch.gather(x, 1, source.expand(n, length))
        trigger_values = trigger[(columns - start).clamp(0, k - 1)]
        # Tokens after the insertion point shift right by k; at 'end' that shift only moves padding, and a
        # sequence too full for the trigger gets it over its last k tokens (insert_at <= length - k).
        return torch.where(in_trigger, trigger_values, shifted)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "tokens": list(self.tokens), "position": self.position, "phrase": self.phrase}


Trigger = PatchTrigger | BlendTrigger | TokenTrigger
"""Any trigger: all three share ``check``, ``apply`` and ``to_dict``."""
