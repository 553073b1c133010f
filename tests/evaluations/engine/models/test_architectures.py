"""The architecture registry: builds, forward and feature shapes, input conventions, errors."""

from __future__ import annotations

import pytest
import torch

from evaluations.engine.models import ARCHITECTURES, ArchitectureError, build


@pytest.mark.parametrize(
    "name, hyperparams, batch, feature_dim",
    [
        ("mlp", {"in_features": 64, "hidden": [32, 16], "num_classes": 10}, (3, 1, 8, 8), 16),
        ("small_cnn", {"in_channels": 1, "input_size": 8, "num_classes": 10}, (3, 1, 8, 8), 64),
        ("small_cnn", {"in_channels": 1, "input_size": 28, "num_classes": 10}, (3, 1, 28, 28), 64),
        ("small_cnn", {"in_channels": 3, "input_size": 32, "num_classes": 5, "feature_dim": 20}, (3, 3, 32, 32), 20),
        ("resnet18_cifar", {"num_classes": 10, "width": 8}, (3, 3, 32, 32), 64),
    ],
)
def test_each_architecture_builds_with_the_right_logit_and_feature_shapes(
    name: str, hyperparams: dict, batch: tuple[int, ...], feature_dim: int
) -> None:
    torch.manual_seed(0)
    model = build(name, **hyperparams).eval()
    x = torch.rand(batch)
    with torch.no_grad():
        assert model(x).shape == (batch[0], hyperparams["num_classes"])
        assert model.features(x).shape == (batch[0], feature_dim)


def test_resnet18_cifar_is_the_full_size_network_on_a_cifar_batch() -> None:
    torch.manual_seed(0)
    model = build("resnet18_cifar", num_classes=10).eval()
    assert 11_000_000 < sum(p.numel() for p in model.parameters()) < 11_300_000  # ResNet-18 for CIFAR
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert model(x).shape == (2, 10)
        assert model.features(x).shape == (2, 512)


def test_text_embeddingbag_takes_padded_ids_and_ignores_the_padding() -> None:
    torch.manual_seed(0)
    model = build("text_embeddingbag", vocab_size=50, embed_dim=8, num_classes=2).eval()
    padded = torch.tensor([[5, 7, 0, 0], [3, 0, 0, 0]])
    with torch.no_grad():
        logits = model(padded)
        features = model.features(padded)
        packed = model(torch.tensor([5, 7, 3]), torch.tensor([0, 2]))
    assert logits.shape == (2, 2) and features.shape == (2, 8)
    assert torch.allclose(features[0], model.embedding.weight[[5, 7]].mean(dim=0))
    assert torch.allclose(logits, packed)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_compiles_to_torchscript_with_features(name: str) -> None:
    hyperparams = {
        "mlp": {"in_features": 4, "num_classes": 3},
        "small_cnn": {"num_classes": 3},
        "resnet18_cifar": {"num_classes": 3, "width": 4},
        "text_embeddingbag": {"vocab_size": 10, "num_classes": 3},
    }[name]
    scripted = torch.jit.script(build(name, **hyperparams))
    assert hasattr(scripted, "features")


def test_unknown_architecture_lists_the_registered_ones() -> None:
    with pytest.raises(ArchitectureError, match="mlp, resnet18_cifar, small_cnn, text_embeddingbag"):
        build("vgg16")


def test_unknown_hyperparameter_names_the_accepted_ones() -> None:
    with pytest.raises(ArchitectureError, match="in_channels, input_size, num_classes"):
        build("small_cnn", kernel=5)


def test_small_cnn_refuses_an_input_size_it_cannot_pool_twice() -> None:
    with pytest.raises(ArchitectureError, match="divisible by 4"):
        build("small_cnn", input_size=10)
