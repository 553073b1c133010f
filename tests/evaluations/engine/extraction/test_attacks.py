"""Extraction attackers on a tiny digits MLP: fidelity well above chance, no crash on poor outputs."""

from __future__ import annotations

import json

import pytest
import torch

from evaluations.engine.common import Cancelled, EngineInputError, InvalidConfigError, ShapeMismatchError
from evaluations.engine.extraction import (
    ActiveLearning,
    ExtractionCancelled,
    ExtractionConfig,
    JacobianAugmentation,
    LocalVictim,
    NaturalPool,
    QueryBudgetExhaustedError,
    RandomQueries,
    Rounding,
    extract,
)

CHANCE = 0.1
FAST = {"epochs": 15, "min_steps": 150, "transfer_steps": 10, "transfer_samples": 100}


def _eval(digits):
    return digits[2][:300], digits[3][:300]


def test_random_queries_reach_fidelity_well_above_chance(victim_model, digits):
    config = ExtractionConfig(budgets=(100, 1000), **FAST)
    result = extract(LocalVictim(victim_model), RandomQueries(), *_eval(digits), config, seed=0)
    assert result.complete and result.queries_used == 1000 and result.evaluation_queries == 300 + 100
    assert result.fidelity > 3 * CHANCE
    assert result.transfer is not None and 0 <= result.transfer.success_rate <= 1
    json.dumps(result.to_dict())


def test_jacobian_augmentation_reaches_high_fidelity_and_transfers(victim_model, digits):
    config = ExtractionConfig(budgets=(50, 200, 400), **FAST)
    result = extract(
        LocalVictim(victim_model), JacobianAugmentation(seed_size=50), *_eval(digits), config, pool=digits[0], seed=0
    )
    assert [point.queries for point in result.curve] == [50, 200, 400]
    assert result.fidelity > 0.7
    assert result.transfer.success_rate > 0.1  # adversarial examples from the surrogate fool the victim


def test_the_fidelity_curve_is_monotone_ish_in_budget(victim_model, digits):
    config = ExtractionConfig(budgets=(25, 100, 400), transfer_attack=None, **FAST)
    result = extract(LocalVictim(victim_model), NaturalPool(), *_eval(digits), config, pool=digits[0], seed=0)
    fidelities = [point.fidelity for point in result.curve]
    assert all(later >= earlier - 0.05 for earlier, later in zip(fidelities, fidelities[1:], strict=False))
    assert fidelities[-1] > fidelities[0]


@pytest.mark.parametrize(
    "victim_kwargs",
    [{"output": "label"}, {"defense": Rounding(decimals=1)}, {"output": "top_k", "k": 2}],
    ids=["label-only", "rounded", "top-2"],
)
def test_label_only_rounded_and_top_k_outputs_do_not_crash(victim_model, digits, victim_kwargs):
    config = ExtractionConfig(budgets=(100, 300), transfer_attack="fgsm", **FAST)
    victim = LocalVictim(victim_model, **victim_kwargs)
    result = extract(victim, JacobianAugmentation(), *_eval(digits), config, pool=digits[0], seed=1)
    assert result.fidelity > 3 * CHANCE
    assert result.soft_labels_used == (victim_kwargs.get("output") != "label")


def test_active_learning_queries_the_pool_and_records_its_curve(victim_model, digits):
    config = ExtractionConfig(budgets=(100, 200), transfer_attack=None, **FAST)
    strategy = ActiveLearning(initial=50, step=50, candidates=500)
    result = extract(LocalVictim(victim_model), strategy, *_eval(digits), config, pool=digits[0], seed=0)
    assert result.queries_used == 200 and result.fidelity > 0.7
    assert result.strategy == {"name": "active", "initial": 50, "step": 50, "uncertainty": "entropy", "candidates": 500}


def test_a_used_up_pool_ends_the_run_with_a_partial_curve(victim_model, digits):
    config = ExtractionConfig(budgets=(20, 100), transfer_attack=None, **FAST)
    result = extract(LocalVictim(victim_model), NaturalPool(), *_eval(digits), config, pool=digits[0][:60], seed=0)
    assert not result.complete and "pool was used up after 60" in result.stopped_reason
    assert [point.queries for point in result.curve] == [20, 60]


def test_cancellation_keeps_the_curve_so_far(victim_model, digits):
    calls = {"n": 0}

    def should_cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    config = ExtractionConfig(budgets=(50, 100, 1000), query_batch_size=50, transfer_attack=None, **FAST)
    with pytest.raises(ExtractionCancelled) as caught:
        extract(LocalVictim(victim_model), RandomQueries(), *_eval(digits), config, seed=0, should_cancel=should_cancel)
    assert isinstance(caught.value, Cancelled)
    assert [point.budget for point in caught.value.partial.curve] == [50, 100]
    assert not caught.value.partial.complete


def test_equal_seeds_give_equal_curves(victim_model, digits):
    config = ExtractionConfig(budgets=(60,), transfer_attack=None, **FAST)
    runs = [extract(LocalVictim(victim_model), RandomQueries(), *_eval(digits), config, seed=5) for _ in range(2)]
    assert runs[0].to_dict()["curve"][0]["fidelity"] == runs[1].to_dict()["curve"][0]["fidelity"]
    assert runs[0].queries_sha256 == runs[1].queries_sha256


def test_a_budget_of_zero_is_a_named_error(victim_model, digits):
    with pytest.raises(InvalidConfigError, match="budget of 0 queries"):
        ExtractionConfig(budgets=(0, 100))
    with pytest.raises(QueryBudgetExhaustedError, match="raise max_queries"):
        extract(LocalVictim(victim_model, max_queries=300), RandomQueries(), *_eval(digits), seed=0)


def test_inputs_of_the_wrong_shape_and_a_missing_pool_are_named_errors(victim_model, digits):
    x, y = _eval(digits)
    with pytest.raises(ShapeMismatchError, match="x_eval has shape"):
        extract(LocalVictim(victim_model), RandomQueries(), x.reshape(300, 64), y, seed=0)
    with pytest.raises(ShapeMismatchError, match="pool has shape"):
        extract(LocalVictim(victim_model), NaturalPool(), x, y, pool=torch.zeros(5, 64), seed=0)
    with pytest.raises(EngineInputError, match="pass pool="):
        extract(LocalVictim(victim_model), NaturalPool(), x, y, seed=0)
