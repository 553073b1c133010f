"""Registry of architectures that safetensors weights can be loaded into.

Every module here maps a batch to logits ``(N, num_classes)`` and exposes ``features(x)``, the
penultimate activations ``(N, feature_dim)``, exported for TorchScript too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention
from torch import Tensor, nn

from evaluations.engine.common import EngineInputError

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "ArchitectureError",
    "MLP",
    "ResNet18Cifar",
    "SmallCNN",
    "TextEmbeddingBag",
    "build",
    "get_architecture",
]


class ArchitectureError(EngineInputError):
    """An unknown architecture name or invalid hyperparameters."""


class MLP(nn.Module):
    """Multi-layer perceptron; flattens any input to ``(N, in_features)``."""

    def __init__(self, in_features: int, hidden: int | Sequence[int] = 64, num_classes: int = 10) -> None:
        super().__init__()
        widths = [hidden] if isinstance(hidden, int) else list(hidden)
        layers: list[nn.Module] = []
        previous = in_features
        for width in widths:
            layers += [nn.Linear(previous, width), nn.ReLU()]
            previous = width
        self.body = nn.Sequential(nn.Flatten(), *layers)
        self.head = nn.Linear(previous, num_classes)

    @torch.jit.export
    def features(self, x: Tensor) -> Tensor:
        """Last hidden layer ``(N, hidden[-1])`` (the flattened input when there is no hidden layer)."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)``."""
        return self.head(self.features(x))


class SmallCNN(nn.Module):
    """Two conv blocks (3x3 conv, ReLU, 2x2 max-pool) and a hidden linear layer.

    Fits 1x8x8 (digits), 1x28x28 (MNIST-like) and 3x32x32 (CIFAR-like) inputs; ``input_size`` must be
    divisible by 4.
    """

    def __init__(
        self,
        in_channels: int = 1,
        input_size: int = 8,
        num_classes: int = 10,
        channels: tuple[int, int] = (16, 32),
        feature_dim: int = 64,
    ) -> None:
        super().__init__()
        if input_size % 4 != 0:
            raise ArchitectureError(f"small_cnn needs input_size divisible by 4 (8, 28, 32); got {input_size}.")
        c1, c2 = channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.fc = nn.Sequential(nn.Linear(c2 * (input_size // 4) ** 2, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, num_classes)

    @torch.jit.export
    def features(self, x: Tensor) -> Tensor:
        """Hidden layer ``(N, feature_dim)``."""
        return self.fc(self.conv(x))

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)`` for ``(N, in_channels, input_size, input_size)``."""
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with batch norm and an identity or 1x1 shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: Tensor) -> Tensor:
        """Residual output with the same or halved spatial size."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18Cifar(nn.Module):
    """CIFAR-style ResNet-18 (He et al. 2016): 3x3 stem, no max-pool, BasicBlocks [2, 2, 2, 2].

    ``width`` is the stem width (64 in the paper); smaller widths make cheap test models.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        in_planes = width
        for stage, planes in enumerate((width, 2 * width, 4 * width, 8 * width)):
            for index in range(2):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(in_planes, planes, stride))
                in_planes = planes
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(8 * width, num_classes)

    @torch.jit.export
    def features(self, x: Tensor) -> Tensor:
        """Globally pooled last-stage activations ``(N, 8 * width)``."""
        return self.pool(self.layers(self.stem(x)))

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)`` for ``(N, in_channels, H, W)``."""
        return self.head(self.features(x))


class TextEmbeddingBag(nn.Module):
    """Mean of token embeddings followed by a linear layer (fastText-style).

    Input convention: ``tokens`` is an int64 tensor ``(N, L)`` of token ids, right-padded with
    ``padding_idx`` (0); padding is excluded from the mean. Alternatively pass EmbeddingBag's packed form:
    a flat ``tokens`` ``(T,)`` with ``offsets`` ``(N,)`` giving each sample's start index.
    Token ids must lie in ``[0, vocab_size)``.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 32, num_classes: int = 2, padding_idx: int = 0) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, mode="mean", padding_idx=padding_idx)
        self.head = nn.Linear(embed_dim, num_classes)

    @torch.jit.export
    def features(self, tokens: Tensor, offsets: Tensor | None = None) -> Tensor:
        """Mean embedding ``(N, embed_dim)``."""
        return self.embedding(tokens, offsets)

    def forward(self, tokens: Tensor, offsets: Tensor | None = None) -> Tensor:
        """Logits ``(N, num_classes)``."""
        return self.head(self.features(tokens, offsets))


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: its name, constructor and expected input."""

    name: str
    builder: Callable[..., nn.Module]
    description: str
    input_dtype: torch.dtype = torch.float32

    def build(self, **hyperparams: Any) -> nn.Module:
        """A freshly initialised module; :class:`ArchitectureError` names the accepted hyperparameters."""
        signature = inspect.signature(self.builder)
        try:
            signature.bind(**hyperparams)
        except TypeError as exc:
            accepted = ", ".join(signature.parameters)
            raise ArchitectureError(
                f"Invalid hyperparameters for {self.name!r} ({exc}); it accepts: {accepted}."
            ) from None
        if "channels" in hyperparams:  # JSON gives lists; SmallCNN wants a pair
            hyperparams["channels"] = tuple(hyperparams["channels"])
        return self.builder(**hyperparams)


ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        Architecture("mlp", MLP, "MLP on flattened inputs: in_features, hidden, num_classes."),
        Architecture(
            "small_cnn",
            SmallCNN,
            "Two conv blocks + linear: in_channels, input_size (8, 28, 32), num_classes, channels, feature_dim.",
        ),
        Architecture("resnet18_cifar", ResNet18Cifar, "CIFAR ResNet-18: num_classes, in_channels, width."),
        Architecture(
            "text_embeddingbag",
            TextEmbeddingBag,
            "Mean token embedding + linear on padded int64 token ids (N, L): vocab_size, embed_dim, num_classes.",
            input_dtype=torch.int64,
        ),
    )
}


def get_architecture(name: str) -> Architecture:
    """Look up a registered architecture, or raise :class:`ArchitectureError` listing the known ones."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ArchitectureError(
            f"Unknown architecture {name!r}; choose one of {', '.join(sorted(ARCHITECTURES))}."
        ) from None


def build(name: str, **hyperparams: Any) -> nn.Module:
    """Build a freshly initialised registered architecture with ``hyperparams``."""
    return get_architecture(name).build(**hyperparams)
