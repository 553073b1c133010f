"""The input-space patch-trigger detector on tiny seeded digits models: finds and locates a planted patch,
stays quiet on a clean model, validates its config, reports progress and honours cancellation."""

from __future__ import annotations

import numpy as np
import pytest

from evaluations.engine.common import InvalidConfigError, ShapeMismatchError
from evaluations.engine.datasets import make_dataset
from evaluations.engine.defenses import TrainingConfig
from evaluations.engine.poisoning import (
    BackdoorConfig,
    DetectionCancelled,
    DetectionConfig,
    InputSpaceConfig,
    PatchTrigger,
    TrainingRecipe,
    detect_patch_triggers,
    detect_poison_in_model,
    simulate_backdoor,
)

RECIPE = TrainingRecipe("small_cnn", {"input_size": 8}, TrainingConfig(epochs=10, lr=3e-3))


@pytest.fixture(scope="module")
def top_left_backdoor(digits_subset):
    """A 2x2 patch in the TOP-LEFT corner, source 2 -> target 7, 15% of class 7 poisoned."""
    train, test = digits_subset
    config = BackdoorConfig(
        PatchTrigger(size=2, location="top_left"), target_class=7, source_classes=(2,), poison_rate=0.15
    )
    return simulate_backdoor(train, test, config, RECIPE, seed=1)


@pytest.fixture(scope="module")
def clean_model(digits_subset):
    train, _ = digits_subset
    module, _ = RECIPE.fit(*train.as_tensors(), seed=1)
    return module


def test_a_planted_patch_is_found_and_its_location_named(top_left_backdoor):
    simulation = top_left_backdoor
    assert simulation.attack_success_rate >= 0.9  # the backdoor was learned
    result = detect_patch_triggers(
        simulation.module, simulation.poisoned.dataset, seed=1, poison_indices=simulation.poison_indices
    )
    assert result.flagged_classes == [7]
    assert result.metrics.recall >= 0.95
    assert result.metrics.precision >= 0.9
    decision = next(c for c in result.classes if c.label == 7)
    assert decision.statistics["trigger_location"] == "top-left corner"
    assert decision.statistics["trigger_rows"] == [0, 1] and decision.statistics["trigger_cols"] == [0, 1]
    assert decision.statistics["source_class"] == 2
    assert decision.statistics["trigger_pattern"] == [1.0, 1.0, 1.0, 1.0]
    assert "4-pixel (2x2) trigger in the top-left corner" in decision.reason
    assert all(not c.flagged and c.reason for c in result.classes if c.label != 7)


def test_the_default_model_detection_uses_the_input_space_detector_for_images(top_left_backdoor):
    simulation = top_left_backdoor
    data, poison = simulation.poisoned.dataset, simulation.poison_indices
    default = detect_poison_in_model(simulation.module, data, seed=1, poison_indices=poison)
    assert default.method == "patch_trigger"
    assert default.flagged_classes == [7]
    union = detect_poison_in_model(
        simulation.module, data, DetectionConfig(images="union"), seed=1, poison_indices=poison
    )
    assert set(union.components) == {"patch_trigger", "features"}
    assert 7 in union.flagged_classes
    seven = next(c for c in union.classes if c.label == 7)
    assert seven.n_flagged == next(c for c in default.classes if c.label == 7).n_flagged  # the trigger carriers


def test_a_clean_model_flags_no_class(digits_subset, clean_model):
    train, _ = digits_subset
    result = detect_patch_triggers(clean_model, train, seed=1, poison_indices=[])
    assert result.flagged_classes == []
    assert result.flagged_indices.size == 0
    assert result.metrics.precision == 1.0
    assert all(c.reason for c in result.classes)


def test_the_same_seed_gives_the_same_result(top_left_backdoor):
    simulation = top_left_backdoor
    first = detect_patch_triggers(simulation.module, simulation.poisoned.dataset, seed=4)
    second = detect_patch_triggers(simulation.module, simulation.poisoned.dataset, seed=4)
    assert np.array_equal(first.flagged_indices, second.flagged_indices)
    assert [c.to_dict() for c in first.classes] == [c.to_dict() for c in second.classes]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("window_sizes", (), "window_sizes"),
        ("window_sizes", (0, 2), "window_sizes"),
        ("max_area_fraction", 0.0, "max_area_fraction"),
        ("max_area_fraction", 1.5, "max_area_fraction"),
        ("tolerance", -0.1, "tolerance"),
        ("tolerance", float("nan"), "tolerance"),
        ("min_transfer", 0.0, "min_transfer"),
        ("min_excluded", 2.0, "min_excluded"),
        ("min_members", 0, "min_members"),
        ("neighbours", True, "neighbours"),
        ("batch_size", 1.5, "batch_size"),
    ],
)
def test_bad_config_values_raise_a_named_error(field, value, message):
    with pytest.raises(InvalidConfigError, match=message):
        InputSpaceConfig(**{field: value})


def test_bad_detection_choices_and_non_image_data_raise_named_errors(clean_model):
    with pytest.raises(InvalidConfigError, match="images must be one of"):
        DetectionConfig(images="pixels")
    with pytest.raises(InvalidConfigError, match="InputSpaceConfig"):
        DetectionConfig(input_space={"tolerance": 0.1})
    tabular = make_dataset(np.random.default_rng(0).random((20, 64), dtype=np.float32), np.arange(20) % 2)
    with pytest.raises(ShapeMismatchError, match=r"\(N, C, H, W\)"):
        detect_patch_triggers(clean_model, tabular)
    with pytest.raises(InvalidConfigError, match="seed"):
        detect_patch_triggers(clean_model, tabular, seed=-1)


def test_progress_rises_to_one_and_cancellation_keeps_the_classes_judged(top_left_backdoor):
    simulation = top_left_backdoor
    seen: list[float] = []
    detect_patch_triggers(simulation.module, simulation.poisoned.dataset, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)

    calls = {"n": 0}

    def cancel_during_judging() -> bool:
        calls["n"] += 1
        return calls["n"] > len(seen) - 5  # every window scanned, then stop after a few classes

    with pytest.raises(DetectionCancelled) as caught:
        detect_patch_triggers(simulation.module, simulation.poisoned.dataset, should_cancel=cancel_during_judging)
    partial = caught.value.partial
    assert partial.config["complete"] is False
    assert 0 < len(partial.classes) < 10

    with pytest.raises(DetectionCancelled, match="after scanning 0 of"):
        detect_patch_triggers(simulation.module, simulation.poisoned.dataset, should_cancel=lambda: True)
