"""A training recipe (architecture, hyperparameters, optimiser settings) that poisoning runs retrain with."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from evaluations.engine.common import CancelCheck, InvalidConfigError, ProgressCallback, sha256_bytes
from evaluations.engine.defenses.training import EpochRecord, TrainingConfig, train_module
from evaluations.engine.models.architectures import get_architecture

__all__ = ["TrainingRecipe", "module_sha256"]


@dataclass(frozen=True)
class TrainingRecipe:
    """How to build and train a model from scratch: the same recipe and seed give the same model.

    Attributes:
        architecture: a registered architecture name (``'small_cnn'``, ``'text_embeddingbag'``, ...).
        hyperparams: its hyperparameters (JSON-serialisable), e.g. ``{'input_size': 8}``.
        training: optimiser settings of the seeded loop
            :func:`~evaluations.engine.defenses.training.train_module`.
    """

    architecture: str
    hyperparams: Mapping[str, Any] = field(default_factory=dict)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def __post_init__(self) -> None:
        get_architecture(self.architecture)  # raises ArchitectureError naming the known ones
        params = dict(self.hyperparams)
        try:
            json.dumps(params)
        except TypeError as exc:
            raise InvalidConfigError(f"hyperparams must be JSON-serialisable ({exc}).") from None
        object.__setattr__(self, "hyperparams", params)
        if not isinstance(self.training, TrainingConfig):
            raise InvalidConfigError(
                f"training must be a TrainingConfig; got {type(self.training).__name__}. "
                "Build one with TrainingConfig(epochs=..., lr=...)."
            )

    @property
    def input_dtype(self) -> torch.dtype:
        """The dtype the architecture takes (int64 for token ids, float32 otherwise)."""
        return get_architecture(self.architecture).input_dtype

    def build(self, *, seed: int) -> nn.Module:
        """A freshly initialised module, its weights drawn from ``seed`` (the caller's global RNG is untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return get_architecture(self.architecture).build(**dict(self.hyperparams))

    def fit(
        self,
        x: Tensor,
        y: Tensor,
        *,
        seed: int,
        device: torch.device | str = "cpu",
        progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> tuple[nn.Module, list[EpochRecord]]:
        """Build with ``seed`` and train on ``(x, y)``; returns the module (eval mode) and its epoch history."""
        module = self.build(seed=seed)
        history = train_module(
            module, x, y, self.training, seed=seed, device=device, progress=progress, should_cancel=should_cancel
        )
        return module, history

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "architecture": self.architecture,
            "hyperparams": dict(self.hyperparams),
            "training": self.training.to_dict(),
        }


def module_sha256(module: nn.Module) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes and bytes), identifying trained weights."""
    parts: list[bytes] = []
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        parts.append(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        parts.append(value.numpy().tobytes() if value.dtype != torch.bfloat16 else value.float().numpy().tobytes())
    return sha256_bytes(b"".join(parts))
