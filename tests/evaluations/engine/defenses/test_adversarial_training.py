"""Adversarial training on a tiny digits problem: it hardens the model, reproducibly, with full provenance."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors import safe_open

from evaluations.engine.common import (
    Cancelled,
    EpsilonOutOfRangeError,
    InvalidConfigError,
    NotDifferentiableError,
    ShapeMismatchError,
)
from evaluations.engine.datasets import make_dataset
from evaluations.engine.defenses import (
    DIGITS_CONFIG,
    AdversarialTrainingConfig,
    AdversarialTrainingResult,
    adversarial_training,
)
from evaluations.engine.models import TorchClassifier, build, load_safetensors

from .conftest import MLP

# Cheap but meaningful: PGD-5 training, PGD-10 x 2 restarts for the before/after measurement.
TINY = AdversarialTrainingConfig(eps=0.1, steps=5, epochs=15, lr=1e-2, eval_steps=10, eval_restarts=2)


def _train(classifier, data, config=TINY, **kwargs) -> AdversarialTrainingResult:
    train, test = data
    return adversarial_training(
        classifier, train, test, config, architecture="mlp", hyperparams=MLP, seed=kwargs.pop("seed", 0), **kwargs
    )


@pytest.fixture(scope="module")
def pgd_run(undefended, tiny_digits) -> tuple[AdversarialTrainingResult, list[float]]:
    ticks: list[float] = []
    return _train(undefended, tiny_digits, progress=ticks.append), ticks


def test_pgd_training_raises_robust_accuracy_over_the_undefended_model(pgd_run) -> None:
    result, _ = pgd_run
    assert result.robust_accuracy_after >= result.robust_accuracy_before + 0.08
    assert result.clean_accuracy_after >= result.clean_accuracy_before - 0.05
    assert result.after.points[0].attack_config["steps"] == 10  # stronger than the 5-step training attack


def test_fast_fgsm_fine_tuning_raises_robust_accuracy_too(undefended, tiny_digits) -> None:
    config = dataclasses.replace(TINY, method="fgsm_rs", init="pretrained", epochs=5, eval_sanity=False)
    result = _train(undefended, tiny_digits, config)
    assert result.robust_accuracy_after >= result.robust_accuracy_before + 0.05
    assert result.to_dict()["training_attack"]["step_size"] == pytest.approx(0.125)  # 1.25 * eps


def test_progress_is_monotonic_and_reaches_one(pgd_run) -> None:
    _, ticks = pgd_run
    assert ticks[-1] == 1.0
    assert all(a <= b for a, b in zip(ticks, ticks[1:], strict=False))
    assert len(ticks) > TINY.epochs  # reported per batch, not per phase


def test_the_history_has_one_record_per_epoch_and_the_loss_falls(pgd_run) -> None:
    result, _ = pgd_run
    assert [record.epoch for record in result.history] == list(range(1, TINY.epochs + 1))
    assert result.history[-1].adversarial_loss < result.history[0].adversarial_loss
    assert result.history[-1].clean_loss is None  # adversarial_fraction = 1
    assert result.history[-1].eval_accuracy == pytest.approx(result.clean_accuracy_after)


def test_the_safetensors_bytes_load_back_to_identical_logits(pgd_run, tiny_digits, tmp_path) -> None:
    result, _ = pgd_run
    path = tmp_path / "hardened.safetensors"
    path.write_bytes(result.safetensors)
    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["architecture"] == "mlp"
    hyperparams = json.loads(metadata["hyperparams"])
    assert hyperparams == {**MLP, "num_classes": 10}
    loaded = load_safetensors(
        path, architecture="mlp", hyperparams=hyperparams, input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=10
    )
    assert loaded.sha256 == result.model_sha256_after
    x, _ = tiny_digits[1].as_tensors()
    with torch.inference_mode():
        assert torch.equal(loaded.logits(x), result.classifier().logits(x))


def test_the_result_records_config_seed_versions_and_hashes(pgd_run, undefended, tiny_digits) -> None:
    result, _ = pgd_run
    record = json.loads(json.dumps(result.to_dict()))
    assert record["config"]["method"] == "pgd" and record["seed"] == 0
    assert record["train_data_sha256"] == tiny_digits[0].sha256
    assert record["test_data_sha256"] == tiny_digits[1].sha256
    assert record["model_sha256_before"] == undefended.sha256
    assert len(record["model_sha256_after"]) == 64
    assert {"python", "torch", "numpy", "sklearn"} <= set(record["library_versions"])
    assert record["robust_accuracy_after"] == result.robust_accuracy_after
    assert record["evaluation_attack"] == {**record["evaluation_attack"], "steps": 10, "restarts": 2}
    assert "module" not in record and "safetensors" not in record


def test_the_same_seed_gives_the_same_model_and_leaves_the_original_and_global_rng_alone(
    undefended, tiny_digits
) -> None:
    config = dataclasses.replace(TINY, init="pretrained", epochs=2, eval_sanity=False)
    before = {k: v.clone() for k, v in undefended.module.state_dict().items()}
    rng = torch.random.get_rng_state()
    first, second = (_train(undefended, tiny_digits, config) for _ in range(2))
    assert torch.equal(rng, torch.random.get_rng_state())  # seeded privately, the global RNG is untouched
    assert first.safetensors == second.safetensors
    assert [r.loss for r in first.history] == [r.loss for r in second.history]
    assert all(torch.equal(before[k], v) for k, v in undefended.module.state_dict().items())
    assert first.module is not undefended.module


def test_cancellation_between_batches_raises_cancelled(undefended, tiny_digits) -> None:
    ticks: list[float] = []
    config = dataclasses.replace(TINY, eval_sanity=False)
    with pytest.raises(Cancelled):
        _train(undefended, tiny_digits, config, progress=ticks.append, should_cancel=lambda: len(ticks) >= 3)
    assert ticks[-1] < 1.0


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"eps": 0}, EpsilonOutOfRangeError, "positive"),
        ({"method": "trades"}, InvalidConfigError, "pgd, fgsm_rs"),
        ({"eval_steps": 5, "eval_restarts": 1}, InvalidConfigError, "stronger"),
        ({"adversarial_fraction": 0.0}, InvalidConfigError, "adversarial_fraction"),
        ({"lr_schedule": "cosine"}, InvalidConfigError, "lr_schedule"),
        ({"epochs": 0}, InvalidConfigError, "epochs"),
        ({"init": "random"}, InvalidConfigError, "init"),
    ],
)
def test_invalid_configs_say_what_to_fix(changes, error, message) -> None:
    with pytest.raises(error, match=message):
        dataclasses.replace(TINY, **changes)


def test_the_digits_defaults_are_pgd_10_with_a_stronger_pgd_50_evaluation() -> None:
    assert (DIGITS_CONFIG.eps, DIGITS_CONFIG.method, DIGITS_CONFIG.steps) == (0.1, "pgd", 10)
    assert (DIGITS_CONFIG.eval_steps, DIGITS_CONFIG.eval_restarts) == (50, 5)


def test_weights_that_do_not_fit_the_named_architecture_are_refused(undefended, tiny_digits) -> None:
    train, test = tiny_digits
    with pytest.raises(InvalidConfigError, match="do not fit 'mlp'"):
        adversarial_training(
            undefended, train, test, TINY, architecture="mlp", hyperparams={"in_features": 64, "hidden": 8}, seed=0
        )


def test_a_text_model_and_mismatched_data_are_refused(undefended, tiny_digits) -> None:
    train, test = tiny_digits
    text = TorchClassifier(
        build("text_embeddingbag", vocab_size=10),
        input_shape=(4,),
        bounds=(0.0, 9.0),
        num_classes=2,
        input_dtype=torch.int64,
    )
    with pytest.raises(NotDifferentiableError):
        adversarial_training(text, train, test, TINY, architecture="text_embeddingbag", hyperparams={}, seed=0)
    flat = make_dataset(train.x.reshape(len(train), -1), train.y, class_names=train.class_names, bounds=(0.0, 1.0))
    with pytest.raises(ShapeMismatchError, match=r"\(64,\)"):
        adversarial_training(undefended, flat, test, TINY, architecture="mlp", hyperparams=MLP, seed=0)
