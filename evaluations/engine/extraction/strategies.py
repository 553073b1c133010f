"""How an extraction attacker picks its queries: random synthesis, a natural pool, Jacobian steps, active learning.

Each strategy is a frozen, validated config. :func:`~evaluations.engine.extraction.attacks.extract` asks
its planner (``config.planner(...)``) for the next at most ``n`` inputs again and again; a planner may
return fewer (active learning returns one acquisition step at a time) or none (the pool is used up).
Planners that need the current surrogate call ``context.surrogate()``, which trains one on every answer
so far (and caches it until new answers arrive).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from evaluations.engine.common import EngineInputError, InvalidConfigError
from evaluations.engine.extraction._surrogate import predict_probabilities

__all__ = ["ActiveLearning", "JacobianAugmentation", "NaturalPool", "RandomQueries", "Strategy"]


class PlanContext(Protocol):
    """What a planner may look at: the answered queries so far and a surrogate trained on them."""

    input_shape: tuple[int, ...]
    bounds: tuple[float, float]
    input_dtype: torch.dtype
    pool: Tensor | None
    device: torch.device

    @property
    def queried(self) -> Tensor: ...  # (M, *input_shape), every input sent so far

    @property
    def labels(self) -> np.ndarray: ...  # (M,), the victim's labels for them

    def surrogate(self) -> nn.Module: ...


class Planner(Protocol):
    """Proposes the next queries."""

    def propose(self, n: int, context: PlanContext) -> Tensor | None: ...


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidConfigError(f"{name} must be an integer >= {low}; got {value!r}.")


class _Strategy:
    name = ""
    needs_pool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, **asdict(self)}  # type: ignore[call-overload]


@dataclass(frozen=True)
class RandomQueries(_Strategy):
    """Inputs drawn uniformly from the input domain ``[lo, hi]^d`` (integer ids for token models).

    The weakest synthetic attacker and the usual baseline (Tramer et al. 2016, "Stealing Machine
    Learning Models via Prediction APIs", which queries uniformly random inputs).
    """

    name = "random"

    def planner(self, seed: int) -> Planner:
        """A fresh planner seeded with ``seed``."""
        return _RandomPlanner(seed)


@dataclass(frozen=True)
class NaturalPool(_Strategy):
    """Knockoff Nets with random sampling (Orekondy, Schiele & Fritz, CVPR 2019, "Knockoff Nets").

    Queries the given public pool, usually from a different distribution than the victim's training
    data, in a seeded random order without repetition; the run ends when the pool is used up. (The
    paper's adaptive, bandit-driven sampling is not implemented.)
    """

    name = "natural_pool"
    needs_pool = True

    def planner(self, seed: int) -> Planner:
        """A fresh planner seeded with ``seed``."""
        return _PoolPlanner(seed)


@dataclass(frozen=True)
class JacobianAugmentation(_Strategy):
    """Jacobian-based dataset augmentation (Papernot et al., AsiaCCS 2017, "Practical Black-Box Attacks").

    Starts from ``seed_size`` inputs (drawn from the pool when one is given, else uniformly at random).
    Each substitute round trains the surrogate ``F`` on all answers so far and adds, for every queried
    ``x`` with victim label ``O(x)``, the point ``clip(x + lambda_r * sign(grad_x F(x)[O(x)]))`` where
    ``F(x)[j]`` is the softmax output of class ``j``; the set doubles each round. ``lambda_r = step *
    (hi - lo) * (-1) ** floor(r / tau)`` (the periodic step of the paper, section 4.3; ``tau`` None means
    no sign flips). Points of a round are queried in a seeded random order, so a budget that ends mid-round
    gets a random subset.

    Token-id inputs (text models) have no input gradient, so there the step is taken in the surrogate's
    embedding space and mapped back to tokens to first order, as in HotFlip (Ebrahimi et al., ACL 2018,
    "HotFlip: White-Box Adversarial Examples for Text Classification"): with ``g_i`` the gradient of
    ``F(x)[O(x)]`` w.r.t. the embedding of position ``i`` (for a mean bag, the bag's gradient over its
    non-padding length), substituting token ``v`` at ``i`` changes it by about ``g_i . (E[v] - E[x_i])``;
    each new point substitutes the ``max(1, round(step * n))`` best (position, token) pairs on distinct
    non-padding positions (``n`` of them), maximising that change when ``lambda_r > 0`` and minimising it
    when ``lambda_r < 0``. The surrogate needs an ``nn.Embedding`` or ``nn.EmbeddingBag`` (mean or sum).

    Attributes:
        step: lambda as a fraction of the input range (0.1 in the paper for MNIST in [0, 1]); for token
            ids, the fraction of a sequence's non-padding tokens substituted per round.
        seed_size: size of the initial set (the paper uses 150 for MNIST).
        tau: rounds between sign flips of lambda, or None.
    """

    step: float = 0.1
    seed_size: int = 50
    tau: int | None = 3
    name = "jacobian"

    def __post_init__(self) -> None:
        if (
            isinstance(self.step, bool)
            or not isinstance(self.step, numbers.Real)
            or not math.isfinite(self.step)
            or not 0 < self.step <= 1
        ):
            raise InvalidConfigError(f"step must be a fraction of the input range in (0, 1]; got {self.step!r}.")
        _check_int("seed_size", self.seed_size, 1)
        if self.tau is not None:
            _check_int("tau", self.tau, 1)

    def planner(self, seed: int) -> Planner:
        """A fresh planner seeded with ``seed``."""
        return _JacobianPlanner(self, seed)


@dataclass(frozen=True)
class ActiveLearning(_Strategy):
    """Pool-based active learning by uncertainty sampling (Lewis & Gale 1994; used for extraction by
    Chandrasekaran et al., USENIX Security 2020, "Exploring Connections Between Active Learning and
    Model Extraction", and Pal et al., AAAI 2020, "ActiveThief").

    Queries ``initial`` random pool points, then repeatedly trains the surrogate and queries the ``step``
    unqueried pool points it is least sure about (``'entropy'``: highest predictive entropy;
    ``'margin'``: smallest gap between the two most likely classes). At most ``candidates`` random
    unqueried points are scored per step, to bound the cost on large pools.
    """

    initial: int = 100
    step: int = 100
    uncertainty: Literal["entropy", "margin"] = "entropy"
    candidates: int = 5000
    name = "active"
    needs_pool = True

    def __post_init__(self) -> None:
        _check_int("initial", self.initial, 1)
        _check_int("step", self.step, 1)
        _check_int("candidates", self.candidates, 1)
        if self.uncertainty not in ("entropy", "margin"):
            raise InvalidConfigError(f"uncertainty must be 'entropy' or 'margin'; got {self.uncertainty!r}.")

    def planner(self, seed: int) -> Planner:
        """A fresh planner seeded with ``seed``."""
        return _ActivePlanner(self, seed)


Strategy = RandomQueries | NaturalPool | JacobianAugmentation | ActiveLearning


# --- planners -------------------------------------------------------------------------------------


def _uniform(n: int, context: PlanContext, generator: torch.Generator) -> Tensor:
    lo, hi = context.bounds
    shape = (n, *context.input_shape)
    if context.input_dtype.is_floating_point:
        return torch.rand(shape, generator=generator).mul_(hi - lo).add_(lo).to(context.input_dtype)
    return torch.randint(int(math.ceil(lo)), int(math.floor(hi)) + 1, shape, generator=generator)


class _RandomPlanner:
    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def propose(self, n: int, context: PlanContext) -> Tensor | None:
        return _uniform(n, context, self.generator)


class _PoolPlanner:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.order: Tensor | None = None
        self.next = 0

    def propose(self, n: int, context: PlanContext) -> Tensor | None:
        pool = context.pool
        assert pool is not None  # extract() checks needs_pool
        if self.order is None:
            self.order = torch.randperm(pool.shape[0], generator=torch.Generator().manual_seed(self.seed))
        index = self.order[self.next : self.next + n]
        self.next += index.numel()
        return pool[index] if index.numel() else None


class _JacobianPlanner:
    def __init__(self, config: JacobianAugmentation, seed: int) -> None:
        self.config = config
        self.generator = torch.Generator().manual_seed(seed)
        self.pending: Tensor | None = None
        self.round = 0

    def propose(self, n: int, context: PlanContext) -> Tensor | None:
        if self.pending is None or self.pending.shape[0] == 0:
            self.pending = self._next_round(context)
        batch, self.pending = self.pending[:n], self.pending[n:]
        return batch

    def _next_round(self, context: PlanContext) -> Tensor:
        if context.queried.shape[0] == 0:
            pool = context.pool
            if pool is not None:
                index = torch.randperm(pool.shape[0], generator=self.generator)[: self.config.seed_size]
                return pool[index]
            return _uniform(self.config.seed_size, context, self.generator)
        lo, hi = context.bounds
        sign = -1.0 if self.config.tau is not None and (self.round // self.config.tau) % 2 == 1 else 1.0
        lam = sign * self.config.step * (hi - lo)
        self.round += 1
        model = context.surrogate()
        x = context.queried
        labels = torch.as_tensor(context.labels, dtype=torch.int64)
        if not context.input_dtype.is_floating_point:
            augmented = _token_substitutions(model, x, labels, sign, self.config.step, context.device)
            return augmented[torch.randperm(augmented.shape[0], generator=self.generator)]
        grads = []
        for params in model.parameters():
            params.requires_grad_(False)
        try:
            for start in range(0, x.shape[0], 1024):
                xb = x[start : start + 1024].to(context.device).requires_grad_(True)
                probs = torch.softmax(model(xb), dim=1)
                chosen = probs.gather(1, labels[start : start + 1024].to(context.device)[:, None]).sum()
                (grad,) = torch.autograd.grad(chosen, xb)
                grads.append(grad.sign().cpu())
        finally:
            for params in model.parameters():
                params.requires_grad_(True)
        augmented = (x + lam * torch.cat(grads)).clamp_(lo, hi)
        return augmented[torch.randperm(augmented.shape[0], generator=self.generator)]


def _embedding_layer(model: nn.Module) -> nn.Embedding | nn.EmbeddingBag:
    for module in model.modules():
        if isinstance(module, nn.Embedding | nn.EmbeddingBag):
            return module
    raise EngineInputError(
        "Jacobian augmentation on token ids steps in the surrogate's embedding space, but the surrogate has no "
        "nn.Embedding or nn.EmbeddingBag layer; use a text surrogate such as 'text_embeddingbag'."
    )


def _token_substitutions(
    model: nn.Module, x: Tensor, labels: Tensor, sign: float, step: float, device: torch.device
) -> Tensor:
    """One HotFlip-style Jacobian round on token ids ``(N, L)``: see :class:`JacobianAugmentation`."""
    layer = _embedding_layer(model)
    chunk = 1024 if isinstance(layer, nn.EmbeddingBag) else 32  # per-position scores take (chunk, L, V) memory
    if isinstance(layer, nn.EmbeddingBag) and layer.mode not in ("mean", "sum"):
        raise EngineInputError(
            f"Jacobian augmentation on token ids needs a mean or sum embedding bag; the surrogate's is {layer.mode!r}."
        )
    pad = -1 if layer.padding_idx is None else int(layer.padding_idx)
    weight = layer.weight.detach()  # (V, d)
    captured: list[Tensor] = []

    def keep(_module: nn.Module, _inputs: Any, output: Tensor) -> Tensor:
        leaf = output.detach().requires_grad_(True)  # the embedding output becomes the leaf we differentiate
        captured.append(leaf)
        return leaf

    out = x.clone()
    for params in model.parameters():
        params.requires_grad_(False)
    handle = layer.register_forward_hook(keep)
    try:
        for start in range(0, x.shape[0], chunk):
            xb = x[start : start + chunk].to(device)
            captured.clear()
            probs = torch.softmax(model(xb), dim=1)
            probs.gather(1, labels[start : start + chunk].to(device)[:, None]).sum().backward()
            grad = captured[0].grad.detach()  # (n, d) for a bag, (n, L, d) per position
            real = xb != pad
            lengths = real.sum(dim=1).clamp_min(1)
            if grad.dim() == 2:
                # a bag: every position moves the bag along the same direction, so one score per token suffices
                # and the change for (i, v) is scale * (g . E[v] - g . E[x_i])
                scale = 1.0 / lengths.to(grad.dtype) if layer.mode == "mean" else torch.ones_like(grad[:, 0])
                score = sign * (grad @ weight.T) * scale[:, None]  # (n, V)
                if pad >= 0:
                    score[:, pad] = -torch.inf  # padding is not a word
                top_value, top_token = score.topk(2, dim=1)
                same = xb == top_token[:, :1]  # substituting a token by itself is no step: take the runner-up
                best_token = torch.where(same, top_token[:, 1:2], top_token[:, :1])
                best_gain = torch.where(same, top_value[:, 1:2], top_value[:, :1]) - score.gather(1, xb)
            else:
                # per position: the change for (i, v) is g_i . (E[v] - E[x_i])
                gain = sign * (grad @ weight.T - (grad * weight[xb]).sum(dim=-1, keepdim=True))  # (n, L, V)
                if pad >= 0:
                    gain[..., pad] = -torch.inf
                gain.scatter_(2, xb[:, :, None], -torch.inf)
                best_gain, best_token = gain.max(dim=2)  # (n, L)
            best_gain = best_gain.masked_fill(~real, -torch.inf)
            flips = (lengths.double() * step).round().clamp_min(1).long()
            rank = best_gain.argsort(dim=1, descending=True).argsort(dim=1)  # 0 = the best position of a row
            chosen = (rank < flips[:, None]) & real
            out[start : start + chunk] = torch.where(chosen, best_token.to(xb.dtype), xb).cpu()
    finally:
        handle.remove()
        for params in model.parameters():
            params.requires_grad_(True)
    return out


class _ActivePlanner:
    def __init__(self, config: ActiveLearning, seed: int) -> None:
        self.config = config
        self.generator = torch.Generator().manual_seed(seed)
        self.unqueried: Tensor | None = None

    def propose(self, n: int, context: PlanContext) -> Tensor | None:
        pool = context.pool
        assert pool is not None  # extract() checks needs_pool
        if self.unqueried is None:
            self.unqueried = torch.randperm(pool.shape[0], generator=self.generator)
        if self.unqueried.numel() == 0:
            return None
        if context.queried.shape[0] < self.config.initial:
            take = min(n, self.config.initial - context.queried.shape[0])
            chosen, self.unqueried = self.unqueried[:take], self.unqueried[take:]
            return pool[chosen]
        candidates = self.unqueried[: self.config.candidates]  # already a random order
        probs = predict_probabilities(context.surrogate(), pool[candidates], device=context.device)
        if self.config.uncertainty == "entropy":
            score = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(axis=1)
        else:
            top2 = np.sort(probs, axis=1)[:, -2:]
            score = -(top2[:, 1] - top2[:, 0])
        take = min(n, self.config.step, candidates.numel())
        best = np.argsort(-score, kind="stable")[:take]
        keep = np.ones(self.unqueried.numel(), dtype=bool)
        keep[best] = False
        chosen = candidates[torch.as_tensor(best)]
        self.unqueried = self.unqueried[torch.as_tensor(keep)]
        return pool[chosen]
