"""Penultimate features: the input of the last nn.Linear, found by hooks, or a named layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evaluations.engine.models import TorchClassifier, build
from evaluations.engine.poisoning import FeatureLayerNotFoundError, extract_features, find_penultimate_layer


class Custom(nn.Module):
    """Non-Sequential: the head is registered FIRST but runs last."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(7, 3)
        self.encoder = nn.Linear(5, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.encoder(x)))


def test_penultimate_layer_is_found_on_a_sequential_model():
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randn(10, 5)
    extraction = extract_features(model, x)
    assert extraction.layer == "4" and extraction.capture == "input"
    assert torch.allclose(extraction.features, model[:4](x))


def test_penultimate_layer_is_found_by_execution_order_on_a_custom_module():
    model = Custom()
    x = torch.randn(4, 5)
    assert find_penultimate_layer(model, x) == "head"
    assert torch.allclose(extract_features(model, x).features, torch.tanh(model.encoder(x)))


@pytest.mark.parametrize(
    ("name", "params", "x"),
    [
        ("small_cnn", {"input_size": 8}, torch.rand(6, 1, 8, 8)),
        ("text_embeddingbag", {"vocab_size": 20}, torch.randint(1, 20, (6, 5))),
    ],
)
def test_registry_models_features_match_their_own_features_method(name, params, x):
    torch.manual_seed(0)
    module = build(name, **params).eval()
    extraction = extract_features(module, x, batch_size=4)
    assert extraction.layer == "head"
    with torch.inference_mode():
        assert torch.allclose(extraction.features, module.features(x), atol=1e-5)


def test_a_named_layer_overrides_the_automatic_choice_and_classifiers_are_accepted():
    module = build("small_cnn", input_size=8)
    classifier = TorchClassifier(module, input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=10)
    extraction = extract_features(classifier, torch.rand(3, 1, 8, 8), layer="conv")
    assert extraction.layer == "conv" and extraction.capture == "output"
    assert extraction.features.shape == (3, 32 * 2 * 2)


def test_an_unknown_layer_name_raises_a_named_error_listing_the_layers():
    with pytest.raises(FeatureLayerNotFoundError, match=r"no layer named 'penultimate'.*'fc'.*'head'"):
        extract_features(build("small_cnn", input_size=8), torch.rand(2, 1, 8, 8), layer="penultimate")


def test_a_model_without_a_linear_layer_asks_for_a_layer_name():
    with pytest.raises(FeatureLayerNotFoundError, match="pass layer="):
        extract_features(nn.Sequential(nn.Flatten(), nn.ReLU()), torch.rand(2, 4))
