"""Square Attack: a score-based black-box attack under the Linf norm."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from evaluations.engine.common import EngineInputError, EpsilonOutOfRangeError, InvalidConfigError, make_generator
from evaluations.engine.models.classifier import Classifier
from evaluations.engine.robustness._checks import check_device, check_epsilon

__all__ = ["SquareConfig", "SquareResult", "margin", "square", "square_fraction"]

# The paper's p schedule: halve p at these fractions (out of 10,000) of the query budget.
_SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


@dataclass(frozen=True)
class SquareConfig:
    """Square Attack settings.

    Attributes:
        eps: Linf budget in the model's input units (``0 < eps <= hi - lo``).
        n_queries: model queries allowed per sample, including the first one on the clean input.
        p_init: initial fraction of the input changed per query (the square's area); it is halved on
            the paper's schedule, rescaled to ``n_queries``. 0.05 in the paper; AutoAttack uses 0.8.
        norm: ``'linf'`` (the only norm implemented).
    """

    eps: float
    n_queries: int = 1000
    p_init: float = 0.8
    norm: Literal["linf"] = "linf"

    def __post_init__(self) -> None:
        if isinstance(self.eps, bool) or not isinstance(self.eps, numbers.Real) or not math.isfinite(self.eps):
            raise EpsilonOutOfRangeError(f"eps must be a finite number; got {self.eps!r}.")
        if self.eps <= 0:
            raise EpsilonOutOfRangeError(f"eps must be positive; got {self.eps}. Use eps > 0, e.g. 8/255.")
        object.__setattr__(self, "eps", float(self.eps))
        if isinstance(self.n_queries, bool) or not isinstance(self.n_queries, int) or self.n_queries < 2:
            raise InvalidConfigError(f"n_queries must be an integer >= 2; got {self.n_queries!r}.")
        if isinstance(self.p_init, bool) or not isinstance(self.p_init, numbers.Real) or not 0 < self.p_init <= 1:
            raise InvalidConfigError(f"p_init must be a number in (0, 1], e.g. 0.05 or 0.8; got {self.p_init!r}.")
        object.__setattr__(self, "p_init", float(self.p_init))
        if self.norm != "linf":
            raise InvalidConfigError(f"Square Attack is implemented for the Linf norm only; got norm={self.norm!r}.")


@dataclass(frozen=True, eq=False)
class SquareResult:
    """Square Attack output: adversarial inputs ``(N, *input_shape)``, queries used ``(N,)`` and success ``(N,)``."""

    adversarial: Tensor
    queries: Tensor
    success: Tensor


def square_fraction(p_init: float, query: int, n_queries: int) -> float:
    """Fraction ``p`` of the input changed at ``query`` (the paper's piecewise schedule, rescaled)."""
    position = int(query / n_queries * 10_000)
    halvings = sum(position > mark for mark in _SCHEDULE)
    return p_init / 2**halvings


def margin(logits: Tensor, y: Tensor) -> Tensor:
    """Margin loss ``z_y - max_{j != y} z_j`` per sample; <= 0 means misclassified (log-probs work too)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf"))
    return true - others.amax(dim=1)


def square(
    classifier: Classifier,
    x: Tensor,
    y: Tensor,
    config: SquareConfig,
    *,
    seed: int,
    device: torch.device | str | None = None,
) -> SquareResult:
    r"""Square Attack in 'Square Attack: a query-efficient black-box adversarial attack via random
    search' (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020).

    Random search on the margin loss using only the model's scores: start from vertical stripes of
    ``+-eps``; at each query, set a random square window (one sign per channel) to ``x +- eps`` and keep
    the change when the margin drops. The square's side is ``sqrt(p * H * W)`` with ``p`` following
    :func:`square_fraction`. Inputs that are not images (``input_shape`` of length other than 2 or 3)
    get a random subset of ``p * D`` coordinates with random signs instead of a square. A sample stops
    querying as soon as it is misclassified. Works with any :class:`Classifier`, including
    scikit-learn models; the first query is the clean input.

    Distance Measure: Linf.

    Arguments:
        classifier: any classifier with float inputs (gradients are not used).
        x: clean inputs, float, shape ``(N, *input_shape)`` (images as ``(N, C, H, W)`` or ``(N, H, W)``),
            within ``classifier.bounds``.
        y: true labels, shape ``(N,)``, integers in ``[0, num_classes)``.
        config: :class:`SquareConfig`.
        seed: seeds the windows and signs; equal seeds give equal results on the same device.
        device: where to run; defaults to, and must match, ``classifier.device``.

    Returns:
        :class:`SquareResult` with adversarial inputs ``(N, *input_shape)`` on the classifier's device,
        queries used ``(N,)`` (int64, at most ``n_queries``) and success ``(N,)`` (bool).
    """
    run_device = check_device(classifier, device)
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise EngineInputError("x must be a floating-point torch tensor of shape (N, *input_shape).")
    classifier.check_input(x)
    if not isinstance(y, Tensor) or y.shape != (x.shape[0],):
        raise EngineInputError(f"y must be a tensor of shape ({x.shape[0]},) to match x.")
    check_epsilon(config.eps, classifier, "linf")
    x = x.detach().to(run_device)
    y = y.detach().to(device=run_device, dtype=torch.int64)
    generator = make_generator(seed, run_device)
    with torch.no_grad():
        return _run(classifier, x, y, config, generator)


def _image_view(shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """``(C, H, W)`` for image-shaped inputs with room for a window, else None (coordinate mode)."""
    if len(shape) == 3:
        c, h, w = shape
    elif len(shape) == 2:
        (h, w), c = shape, 1
    else:
        return None
    return (c, h, w) if min(h, w) >= 2 else None


def _run(
    classifier: Classifier, x: Tensor, y: Tensor, config: SquareConfig, generator: torch.Generator
) -> SquareResult:
    """The random search; one host sync per query to drop samples that are already fooled."""
    eps, (lo, hi) = config.eps, classifier.bounds
    n = x.shape[0]
    image = _image_view(tuple(x.shape[1:]))
    flat = x.reshape(n, -1)
    lower = (flat - eps).clamp_(min=lo)
    upper = (flat + eps).clamp_(max=hi)
    queries = torch.ones(n, dtype=torch.int64, device=x.device)

    def scores(candidate: Tensor, rows: Tensor) -> Tensor:
        return margin(classifier.logits(candidate.reshape(-1, *x.shape[1:])).to(x.device), y[rows])

    all_rows = torch.arange(n, device=x.device)
    best = flat.clone()
    best_margin = scores(best, all_rows)
    active = best_margin > 0
    if image is not None:
        c, h, w = image
        signs = _random_signs((n, c, 1, w), generator, x)  # vertical stripes
        start = (flat.view(n, c, h, w) + eps * signs).reshape(n, -1)
    else:
        start = flat + eps * _random_signs(flat.shape, generator, x)
    start = torch.minimum(torch.maximum(start, lower), upper)
    rows = active.nonzero().squeeze(1)
    if rows.numel():
        start_margin = scores(start[rows], rows)
        queries[rows] += 1
        best[rows] = start[rows]
        best_margin[rows] = start_margin

    for query in range(2, config.n_queries):
        rows = (best_margin > 0).nonzero().squeeze(1)
        if rows.numel() == 0:
            break
        p = square_fraction(config.p_init, query - 2, config.n_queries)
        current = best[rows]
        if image is not None:
            proposal = _square_proposal(current, lower[rows], upper[rows], image, p, eps, generator)
        else:
            proposal = _coordinate_proposal(current, lower[rows], upper[rows], p, eps, generator)
        new_margin = scores(proposal, rows)
        queries[rows] += 1
        improved = new_margin < best_margin[rows]
        best[rows] = torch.where(improved[:, None], proposal, current)
        best_margin[rows] = torch.where(improved, new_margin, best_margin[rows])

    return SquareResult(adversarial=best.view_as(x), queries=queries, success=best_margin <= 0)


def _random_signs(shape: tuple[int, ...] | torch.Size, generator: torch.Generator, like: Tensor) -> Tensor:
    """Uniform +-1 of ``shape``."""
    bits = torch.randint(0, 2, tuple(shape), generator=generator, device=like.device)
    return bits.to(like.dtype).mul_(2).sub_(1)


def _square_proposal(
    current: Tensor,
    lower: Tensor,
    upper: Tensor,
    image: tuple[int, int, int],
    p: float,
    eps: float,
    generator: torch.Generator,
) -> Tensor:
    """Set one random ``s x s`` window per sample to ``x +- eps`` (a sign per channel), flipping no-op signs."""
    c, h, w = image
    m = current.shape[0]
    side = min(max(round(math.sqrt(p * h * w)), 1), min(h, w) - 1)
    top = torch.randint(0, h - side + 1, (m, 1), generator=generator, device=current.device)
    left = torch.randint(0, w - side + 1, (m, 1), generator=generator, device=current.device)
    rows = torch.arange(h, device=current.device)[None, :]
    cols = torch.arange(w, device=current.device)[None, :]
    in_rows = (rows >= top) & (rows < top + side)
    in_cols = (cols >= left) & (cols < left + side)
    window = (in_rows[:, :, None] & in_cols[:, None, :])[:, None].expand(m, c, h, w).reshape(m, -1)
    signs = _random_signs((m, c, 1, 1), generator, current).expand(m, c, h, w).reshape(m, -1)

    def apply(sign: Tensor) -> Tensor:
        moved = torch.minimum(torch.maximum(current + 2 * eps * sign, lower), upper)
        return torch.where(window, moved, current)

    proposal = apply(signs)
    # The paper redraws a window that would not change the input; flipping its signs does the same.
    unchanged = ((proposal - current).abs() <= 1e-7).all(dim=1, keepdim=True)
    return torch.where(unchanged, apply(-signs), proposal)


def _coordinate_proposal(
    current: Tensor, lower: Tensor, upper: Tensor, p: float, eps: float, generator: torch.Generator
) -> Tensor:
    """Move a random ``p`` fraction of coordinates per sample to ``x +- eps`` (random signs)."""
    m, d = current.shape
    k = min(max(round(p * d), 1), d)
    order = torch.rand((m, d), generator=generator, device=current.device).argsort(dim=1)
    chosen = torch.zeros((m, d), dtype=torch.bool, device=current.device).scatter_(1, order[:, :k], True)
    moved = torch.minimum(torch.maximum(current + 2 * eps * _random_signs((m, d), generator, current), lower), upper)
    return torch.where(chosen, moved, current)
