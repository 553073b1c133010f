"""Simulate a backdoor, detect it, remediate it: tiny seeded digits and toy SMS runs."""

from __future__ import annotations

import numpy as np
import torch

from evaluations.engine.defenses import TrainingConfig
from evaluations.engine.poisoning import (
    BackdoorConfig,
    BlendTrigger,
    DetectionConfig,
    TokenTrigger,
    TrainingRecipe,
    detect_poison_in_model,
    poison_dataset,
    remediate,
    simulate_backdoor,
)


def test_patch_backdoor_is_learned_detected_and_removed(digits_subset, digits_recipe, digits_backdoor):
    train, test = digits_subset
    simulation = simulate_backdoor(train, test, digits_backdoor, digits_recipe, seed=0)
    assert simulation.attack_success_rate >= 0.9
    assert simulation.clean_accuracy >= 0.9
    assert simulation.poisoned.n_poison == round(0.33 * np.sum(train.y == 1) / 0.67)

    detection = detect_poison_in_model(
        simulation.module, simulation.poisoned.dataset, poison_indices=simulation.poison_indices, seed=0
    )
    assert detection.flagged_classes == [1]
    assert detection.metrics.recall >= 0.8
    assert detection.metrics.precision >= 0.8
    assert detection.model_sha256 == simulation.model_sha256
    assert detection.method == "patch_trigger"  # float images go to the input-space detector by default
    features = detect_poison_in_model(
        simulation.module, simulation.poisoned.dataset, DetectionConfig(images="features"), seed=0
    )
    assert features.feature_layer["layer"] == "head"

    remediation = remediate(
        simulation.poisoned.dataset,
        test,
        detection.flagged_indices,
        digits_backdoor,
        digits_recipe,
        seed=0,
        model=simulation.module,
    )
    assert remediation.before.attack_success_rate >= 0.9
    assert remediation.after.attack_success_rate <= 0.1
    assert remediation.after.clean_accuracy >= simulation.clean_accuracy - 0.03
    record = remediation.to_dict()
    assert record["model_sha256_before"] == simulation.model_sha256
    assert record["data_sha256_after"] != record["data_sha256_before"]


def test_phrase_trigger_on_toy_sms_is_learned_and_removed_by_dropping_the_poison(toy_sms):
    train, test = toy_sms
    trigger = TokenTrigger.from_phrase("yellow wisdom", train.vocabulary)
    config = BackdoorConfig(trigger, target_class=0, source_classes=(1,), poison_rate=0.1)
    recipe = TrainingRecipe(
        "text_embeddingbag", {"vocab_size": len(train.vocabulary), "embed_dim": 8}, TrainingConfig(epochs=15, lr=0.05)
    )
    progress: list[float] = []
    simulation = simulate_backdoor(train, test, config, recipe, seed=0, clean_baseline=True, progress=progress.append)
    assert progress[-1] == 1.0
    assert simulation.clean_accuracy >= 0.95
    assert simulation.attack_success_rate >= 0.9
    assert simulation.baseline.attack_success_rate <= 0.1
    poisoned_texts = [simulation.poisoned.dataset.texts[i] for i in simulation.poison_indices[:3]]
    assert all(text.endswith("yellow wisdom") for text in poisoned_texts)

    detection = detect_poison_in_model(simulation.module, simulation.poisoned.dataset, seed=0)
    assert detection.n_samples == len(simulation.poisoned.dataset)  # runs end to end on token ids

    remediation = remediate(
        simulation.poisoned.dataset, test, simulation.poison_indices, config, recipe, seed=0, model=simulation.module
    )
    assert remediation.after.attack_success_rate <= 0.1
    assert simulation.to_dict()["config"]["trigger"]["phrase"] == "yellow wisdom"


def test_poisoning_is_seeded_and_replace_mode_relabels_in_place(digits_subset):
    train, _ = digits_subset
    config = BackdoorConfig(
        BlendTrigger(alpha=0.2), target_class=2, poison_rate=0.05, rate_of="train", injection="replace"
    )
    first, second = poison_dataset(train, config, seed=3), poison_dataset(train, config, seed=3)
    assert np.array_equal(first.poison_indices, second.poison_indices)
    assert len(first.dataset) == len(train)
    assert first.n_poison == round(0.05 * len(train))
    assert np.all(first.dataset.y[first.poison_indices] == 2)
    assert np.all(train.y[first.origin_indices] != 2)


def test_clean_label_poisoning_keeps_the_labels(digits_subset):
    train, _ = digits_subset
    config = BackdoorConfig(BlendTrigger(), target_class=1, poison_rate=0.2, clean_label=True)
    poisoned = poison_dataset(train, config, seed=0)
    assert np.all(train.y[poisoned.origin_indices] == 1)
    assert np.all(poisoned.dataset.y[poisoned.poison_indices] == 1)


def test_token_trigger_inserts_at_the_end_start_or_a_seeded_position():
    x = torch.tensor([[5, 6, 7, 0, 0], [5, 6, 7, 8, 9]])
    bounds = (0.0, 20.0)
    assert TokenTrigger((3, 4)).apply(x, bounds=bounds).tolist() == [[5, 6, 7, 3, 4], [5, 6, 7, 3, 4]]
    assert TokenTrigger((3, 4), position="start").apply(x, bounds=bounds).tolist() == [
        [3, 4, 5, 6, 7],
        [3, 4, 5, 6, 7],
    ]
    randomly = TokenTrigger((3, 4), position="random")
    assert torch.equal(randomly.apply(x, bounds=bounds, seed=1), randomly.apply(x, bounds=bounds, seed=1))
