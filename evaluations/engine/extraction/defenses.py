"""Output defenses against model extraction: what a prediction API reveals about each answer.

Every defense is a pure function on a batch of probability vectors ``(N, C)`` (rows summing to 1)
returning a float64 array of the same shape, and has a frozen config class whose instances are the
same function with bound parameters (``TopK(k=3)(probs)``), record themselves with ``to_dict()`` and
say whether they keep the top-1 class (``keeps_top1``). "Keeps top-1" means, for every row,
``np.argmax(defended) == np.argmax(probs)`` (``np.argmax`` breaks ties by the lowest index).

* :func:`label_only` one-hot of the top class (the API reveals only labels).
* :func:`top_k` the ``k`` largest probabilities, the rest zeroed, renormalised.
* :func:`round_probabilities` rounded to ``decimals`` places (Tramer et al. 2016, "Stealing Machine
  Learning Models via Prediction APIs", section 8); ties at the top are broken for the original top class.
* :func:`reverse_sigmoid` the deceptive perturbation of Lee et al. 2019, "Defending against NN model
  stealing attacks using deceptive perturbations" (IEEE S&P Workshops).
* :func:`gaussian_noise` additive Gaussian noise, clipped and renormalised (does not keep top-1).

:func:`defense_utility` measures what a defense costs the victim's own users.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from evaluations.engine.common import (
    InvalidConfigError,
    LabelOutOfRangeError,
    ShapeMismatchError,
    library_versions,
    sha256_arrays,
)
from evaluations.engine.models.classifier import Classifier

__all__ = [
    "DefenseUtility",
    "GaussianNoise",
    "LabelOnly",
    "OutputDefense",
    "ReverseSigmoid",
    "Rounding",
    "TopK",
    "defense_utility",
    "gaussian_noise",
    "label_only",
    "reverse_sigmoid",
    "round_probabilities",
    "top_k",
]

OutputDefense = Callable[[np.ndarray], np.ndarray]
"""Maps probability vectors ``(N, C)`` to defended vectors of the same shape."""

#: Probabilities are clipped to [_CLIP, 1 - _CLIP] before taking the inverse sigmoid.
_CLIP = 1e-9


def _as_probabilities(probs: Any) -> np.ndarray:
    """``probs`` as a float64 ``(N, C)`` array (a copy), refusing other shapes."""
    array = np.array(probs, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < 2:
        raise ShapeMismatchError(
            f"Defenses take a batch of probability vectors of shape (N, C) with C >= 2; got {array.shape}. "
            "Wrap a single vector as probs[None]."
        )
    if not np.isfinite(array).all():
        raise InvalidConfigError("The probability vectors contain NaN or infinite values.")
    return array


def _one_hot(index: np.ndarray, num_classes: int) -> np.ndarray:
    out = np.zeros((index.shape[0], num_classes))
    out[np.arange(index.shape[0]), index] = 1.0
    return out


# --- pure functions -------------------------------------------------------------------------------


def label_only(probs: np.ndarray) -> np.ndarray:
    """One-hot vectors ``(N, C)`` of each row's top class."""
    array = _as_probabilities(probs)
    return _one_hot(array.argmax(axis=1), array.shape[1])


def top_k(probs: np.ndarray, k: int) -> np.ndarray:
    """Keep each row's ``k`` largest probabilities (ties: lowest index first), zero the rest, renormalise."""
    array = _as_probabilities(probs)
    _check_int("k", k, 1, array.shape[1])
    keep = np.argsort(-array, axis=1, kind="stable")[:, :k]
    out = np.zeros_like(array)
    np.put_along_axis(out, keep, np.take_along_axis(array, keep, axis=1), axis=1)
    totals = out.sum(axis=1, keepdims=True)
    dead = totals[:, 0] <= 0
    out[dead] = _one_hot(array[dead].argmax(axis=1), array.shape[1])  # all-zero rows stay decodable
    totals[dead] = 1.0
    return out / totals


def round_probabilities(probs: np.ndarray, decimals: int) -> np.ndarray:
    """Round to ``decimals`` places; where the original top class ties another at the rounded maximum,
    raise it by one unit (``10**-decimals``) so it stays the unique top-1. Rows are not renormalised."""
    array = _as_probabilities(probs)
    _check_int("decimals", decimals, 0, 15)
    top = array.argmax(axis=1)
    rows = np.arange(array.shape[0])
    out = np.round(array, decimals)
    best = out[rows, top]
    tied = (out >= best[:, None]).sum(axis=1) > 1
    out[rows[tied], top[tied]] += 10.0**-decimals
    return np.clip(out, 0.0, 1.0 + 10.0**-decimals)


def reverse_sigmoid(probs: np.ndarray, beta: float, gamma: float) -> np.ndarray:
    r"""Reverse-sigmoid perturbation (Lee et al. 2019), renormalised.

    ``r = beta * (sigmoid(gamma * logit(p)) - 1/2)`` and ``out = alpha * (p - r)`` with ``alpha``
    normalising each row (``p`` clipped to ``[1e-9, 1 - 1e-9]``). The map ``p -> p - r`` is
    non-monotone, so an attacker fitting the logits (``logit(out)``) is pushed the wrong way. When
    ``gamma >= 1`` and ``beta * gamma < 1`` it is strictly increasing on ``(0, 1)`` (its slope is
    ``1 - beta * gamma`` at ``p = 1/2`` and larger elsewhere) with values in ``[beta/2, 1 - beta/2]``,
    so the top-1 class is kept; outside that range it may change. (ART's ``ReverseSigmoid`` adds
    ``r`` instead of subtracting it, which is always monotone but not the paper's perturbation.)
    """
    _check_real("beta", beta, positive=True)
    _check_real("gamma", gamma, positive=True)
    return _reverse_sigmoid(probs, float(beta), float(gamma))


def _reverse_sigmoid(probs: np.ndarray, beta: float, gamma: float) -> np.ndarray:
    """:func:`reverse_sigmoid` with parameters already checked (a :class:`ReverseSigmoid` checks its own once)."""
    if (
        isinstance(probs, np.ndarray)
        and probs.dtype.kind == "f"
        and probs.ndim == 2
        and 2 <= probs.shape[1] <= _ROW_WISE_CLASSES
    ):
        return _reverse_sigmoid_rows(probs, beta, gamma)
    array = _as_probabilities(probs)
    clipped = np.minimum(np.maximum(array, _CLIP), 1.0 - _CLIP)
    out = clipped - beta * (1.0 / (1.0 + np.exp(-gamma * (np.log(clipped) - np.log1p(-clipped)))) - 0.5)
    np.maximum(out, 0.0, out=out)
    totals = out.sum(axis=1, keepdims=True)
    dead = totals[:, 0] <= 0
    if dead.any():
        out[dead] = _one_hot(array[dead].argmax(axis=1), array.shape[1])
        totals[dead] = 1.0
    out /= totals
    return out


#: Up to this many classes, :func:`reverse_sigmoid` works row by row in Python floats: a guarded deployment runs it
#: on every answer, mostly one short row, where each numpy call costs more than the arithmetic (one 10-class row: 4 us
#: against 10 us in a tight loop, and a wider gap inside a request, where numpy's per-call work runs from cold caches).
#: Wider rows take the array path. Which path a row takes depends only on its width, never on the batch, so a row gets
#: the same answer alone or in any batch (the two paths differ by rounding, within 1e-15).
_ROW_WISE_CLASSES = 64


def _reverse_sigmoid_rows(probs: np.ndarray, beta: float, gamma: float) -> np.ndarray:
    """:func:`reverse_sigmoid` of a float array ``(N, C)`` with few classes: the same formula, in Python floats."""
    rows = probs.tolist()
    width = probs.shape[1]
    high = 1.0 - _CLIP
    out = []
    for row in rows:
        perturbed = []
        for p in row:
            if not math.isfinite(p):
                raise InvalidConfigError("The probability vectors contain NaN or infinite values.")
            c = _CLIP if p < _CLIP else high if p > high else p
            v = c - beta * (1.0 / (1.0 + math.exp(-gamma * (math.log(c) - math.log1p(-c)))) - 0.5)
            perturbed.append(v if v > 0.0 else 0.0)
        total = sum(perturbed)
        if total > 0:
            out.append([v / total for v in perturbed])
        else:  # nothing left: the one-hot of the original top class (the lowest index of a tie)
            top = row.index(max(row))
            out.append([1.0 if i == top else 0.0 for i in range(width)])
    return np.array(out, dtype=np.float64) if out else np.empty(probs.shape)


def gaussian_noise(probs: np.ndarray, std: float, seed: int) -> np.ndarray:
    """Add ``N(0, std^2)`` noise from a generator seeded with ``seed``, clip at 0 and renormalise.

    The noise depends on ``seed`` and on the batch bytes, so the same batch always gets the same noise
    (repeating a query does not average it away) while different batches get different noise.
    """
    array = _as_probabilities(probs)
    _check_real("std", std, positive=False)
    _check_int("seed", seed, 0, None)
    digest = sha256_arrays(array)
    rng = np.random.default_rng([seed, int(digest[:15], 16)])
    out = np.clip(array + rng.normal(0.0, std, size=array.shape), 0.0, None)
    totals = out.sum(axis=1, keepdims=True)
    dead = totals[:, 0] <= 0
    out[dead] = 1.0 / array.shape[1]
    totals[dead] = 1.0
    return out / totals


# --- configs --------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (high and value > high):
        span = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise InvalidConfigError(f"{name} must be an integer {span}; got {value!r}.")


def _check_real(name: str, value: Any, *, positive: bool) -> None:
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        raise InvalidConfigError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}; got {value!r}.")


class _Defense:
    """Shared ``to_dict`` of the config classes."""

    name = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the defense's name, parameters and whether it keeps top-1."""
        return {"name": self.name, **asdict(self), "keeps_top1": self.keeps_top1}  # type: ignore[call-overload]

    @property
    def keeps_top1(self) -> bool:
        """Whether every row's top-1 class is guaranteed to survive."""
        return True


@dataclass(frozen=True)
class LabelOnly(_Defense):
    """Reveal labels only (one-hot vectors)."""

    name = "label_only"

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        """One-hot of the top class."""
        return label_only(probs)


@dataclass(frozen=True)
class TopK(_Defense):
    """Reveal the ``k`` largest probabilities."""

    k: int = 3
    name = "top_k"

    def __post_init__(self) -> None:
        _check_int("k", self.k, 1, None)

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        """See :func:`top_k`."""
        return top_k(probs, self.k)


@dataclass(frozen=True)
class Rounding(_Defense):
    """Round probabilities to ``decimals`` places."""

    decimals: int = 2
    name = "rounding"

    def __post_init__(self) -> None:
        _check_int("decimals", self.decimals, 0, 15)

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        """See :func:`round_probabilities`."""
        return round_probabilities(probs, self.decimals)


@dataclass(frozen=True)
class ReverseSigmoid(_Defense):
    """Reverse-sigmoid perturbation (Lee et al. 2019); keeps top-1 when ``gamma >= 1`` and ``beta * gamma < 1``."""

    beta: float = 0.7
    gamma: float = 1.2
    name = "reverse_sigmoid"

    def __post_init__(self) -> None:
        _check_real("beta", self.beta, positive=True)
        _check_real("gamma", self.gamma, positive=True)

    @property
    def keeps_top1(self) -> bool:
        """True inside the monotone range ``gamma >= 1`` and ``beta * gamma < 1``."""
        return self.gamma >= 1.0 and self.beta * self.gamma < 1.0

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        """See :func:`reverse_sigmoid`."""
        return _reverse_sigmoid(probs, float(self.beta), float(self.gamma))


@dataclass(frozen=True)
class GaussianNoise(_Defense):
    """Additive Gaussian noise with standard deviation ``std``, seeded."""

    std: float = 0.05
    seed: int = 0
    name = "gaussian_noise"

    def __post_init__(self) -> None:
        _check_real("std", self.std, positive=False)
        _check_int("seed", self.seed, 0, None)

    @property
    def keeps_top1(self) -> bool:
        """Noise can reorder classes (unless ``std`` is 0)."""
        return self.std == 0

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        """See :func:`gaussian_noise`."""
        return gaussian_noise(probs, self.std, self.seed)


# --- utility --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefenseUtility:
    """What a defense costs the victim's users on labelled data.

    ``accuracy`` is the defended victim's accuracy (argmax of the defended output), ``top1_agreement``
    the fraction of inputs whose defended top-1 equals the undefended one, ``mean_l1_distortion`` the
    mean L1 distance between defended and undefended probability vectors.
    """

    defense: dict[str, Any]
    n_samples: int
    undefended_accuracy: float
    accuracy: float
    top1_agreement: float
    mean_l1_distortion: float
    model_sha256: str | None
    data_sha256: str
    library_versions: dict[str, str]

    @property
    def accuracy_drop(self) -> float:
        """Undefended minus defended accuracy."""
        return self.undefended_accuracy - self.accuracy

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "accuracy_drop": self.accuracy_drop}


def defense_utility(
    victim: Classifier, defense: OutputDefense, x: Tensor, y: Tensor, *, batch_size: int = 512
) -> DefenseUtility:
    """The defended victim's own accuracy on ``(x, y)`` and its top-1 agreement with the undefended one.

    ``victim`` is the model behind the API (its probabilities are ``softmax(logits)``), ``x`` a batch
    ``(N, *input_shape)`` and ``y`` int64 labels ``(N,)``.
    """
    x = torch.as_tensor(x)
    y = torch.as_tensor(y)
    victim.check_input(x)
    if y.shape != (x.shape[0],):
        raise ShapeMismatchError(f"y must have shape ({x.shape[0]},) to match x; got {tuple(y.shape)}.")
    labels = y.cpu().numpy().astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= victim.num_classes):
        raise LabelOutOfRangeError(f"Labels must lie in [0, {victim.num_classes}); encode them as 0..C-1.")
    parts = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch_size):
            batch = x[start : start + batch_size].to(victim.device)
            parts.append(torch.softmax(victim.logits(batch).double(), dim=1).cpu().numpy())
    clean = np.concatenate(parts)
    defended = np.asarray(defense(clean), dtype=np.float64)
    if defended.shape != clean.shape:
        raise ShapeMismatchError(f"The defense changed the shape {clean.shape} to {defended.shape}; it must keep it.")
    clean_top, defended_top = clean.argmax(axis=1), defended.argmax(axis=1)
    describe = getattr(defense, "to_dict", None)
    return DefenseUtility(
        defense=describe() if callable(describe) else {"name": getattr(defense, "__name__", type(defense).__name__)},
        n_samples=int(labels.size),
        undefended_accuracy=float((clean_top == labels).mean()),
        accuracy=float((defended_top == labels).mean()),
        top1_agreement=float((clean_top == defended_top).mean()),
        mean_l1_distortion=float(np.abs(defended - clean).sum(axis=1).mean()),
        model_sha256=victim.sha256,
        data_sha256=sha256_arrays(x, y),
        library_versions=library_versions(),
    )
