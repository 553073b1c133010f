"""Sanity checks: each fires on a model built to fool attacks, and all stay quiet on the plain digits CNN."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from evaluations.engine.common import Cancelled, EngineInputError, InvalidConfigError
from evaluations.engine.models import TorchClassifier
from evaluations.engine.robustness import (
    FGSMConfig,
    PGDConfig,
    RobustnessResult,
    SanityConfig,
    robustness_sweep,
    run_sanity_checks,
)
from evaluations.engine.robustness.sanity import SANITY_CHECKS

N = 96
CHEAP = SanityConfig(
    subset_size=48, convergence_steps=30, convergence_restarts=2, black_box_queries=300, convergence_queries=300
)


class Quantized(nn.Module):
    """Rounds inputs to a few grey levels first: torch.round has a zero gradient everywhere."""

    def __init__(self, inner: nn.Module, levels: int = 4) -> None:
        super().__init__()
        self.inner, self.levels = inner, levels

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(torch.round(x * self.levels) / self.levels)


class Softmaxed(nn.Module):
    """Returns probabilities where logits are expected."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        return torch.softmax(self.inner(x), dim=1)


class Noisy(nn.Module):
    """Adds fresh noise to the logits at inference (like dropout left on)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x) + 0.5 * torch.randn(x.shape[0], 10)


class Memorizing(nn.Module):
    """Answers from a memorised bank, with no gradient, once an input leaves a small Linf neighbourhood."""

    def __init__(self, inner: nn.Module, bank_x: Tensor, bank_y: Tensor, radius: float) -> None:
        super().__init__()
        self.inner, self.bank_x, self.bank_y, self.radius = inner, bank_x.flatten(1), bank_y, radius

    def forward(self, x: Tensor) -> Tensor:
        distance, nearest = (x.flatten(1)[:, None, :] - self.bank_x[None]).abs().amax(dim=2).min(dim=1)
        memorised = 20.0 * F.one_hot(self.bank_y[nearest], 10).float()
        return torch.where((distance > self.radius)[:, None], memorised, self.inner(x))


def _wrap(module: nn.Module) -> TorchClassifier:
    return TorchClassifier(module, input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=10)


def _codes(result: RobustnessResult) -> set[str]:
    return {flag.code for flag in result.flags}


@pytest.fixture(scope="module")
def data(digits_test) -> tuple[Tensor, Tensor]:
    return digits_test[0][:N], digits_test[1][:N]


def _sweep(classifier, data, **options) -> RobustnessResult:
    x, y = data
    options.setdefault("attack", "pgd")
    options.setdefault("epsilons", [0.0, 0.1, 0.2])
    options.setdefault("sanity_config", CHEAP)
    return robustness_sweep(classifier, x, y, seed=0, **options)


@pytest.fixture(scope="module")
def normal_result(digits_cnn, data) -> RobustnessResult:
    return _sweep(digits_cnn, data, attack="apgd", epsilons=[0.0, 0.05, 0.1])


def test_the_plain_digits_cnn_result_is_reliable_with_no_flags(normal_result) -> None:
    assert normal_result.flags == []
    assert normal_result.reliable is True
    assert normal_result.sanity_checks == list(SANITY_CHECKS)  # every check ran
    assert normal_result.sanity_skipped == {}


def test_a_quantizing_model_is_flagged_for_masked_gradients(digits_cnn, data) -> None:
    result = _sweep(_wrap(Quantized(digits_cnn.module)), data)
    assert {"vanishing_gradients", "black_box_beats_white_box", "unbroken_at_large_epsilon"} <= _codes(result)
    assert result.reliable is False
    flag = next(f for f in result.flags if f.code == "vanishing_gradients")
    assert "gradient" in flag.message and flag.details["vanishing"] == flag.details["checked"]


def test_a_model_returning_probabilities_is_flagged(digits_cnn, data) -> None:
    result = _sweep(
        _wrap(Softmaxed(digits_cnn.module)),
        data,
        sanity_config=SanityConfig(subset_size=32, convergence=False, black_box=False),
    )
    assert "probabilities_as_logits" in _codes(result)
    assert "probabilities_as_logits" not in _codes(
        _sweep(digits_cnn, data, sanity_config=SanityConfig(subset_size=32, convergence=False, black_box=False))
    )


def test_a_randomized_model_is_flagged(digits_cnn, data) -> None:
    config = SanityConfig(subset_size=32, convergence=False, black_box=False)
    result = _sweep(_wrap(Noisy(digits_cnn.module)), data, sanity_config=config)
    assert "randomized_outputs" in _codes(result)
    dropout = nn.Sequential(digits_cnn.module, nn.Dropout(0.5))
    classifier = TorchClassifier(dropout, input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=10)
    dropout[1].train()  # dropout left on at inference; the shared CNN stays in eval mode
    assert "randomized_outputs" in _codes(_sweep(classifier, data, sanity_config=config))


def test_a_memorizing_model_is_flagged_non_monotonic_and_unbroken_at_large_eps(digits_cnn, data) -> None:
    x, y = data
    result = _sweep(_wrap(Memorizing(digits_cnn.module, x, y, radius=0.08)), data, epsilons=[0.0, 0.05, 0.1])
    codes = _codes(result)
    assert {"non_monotonic_epsilon", "unbroken_at_large_epsilon"} <= codes
    flag = next(f for f in result.flags if f.code == "non_monotonic_epsilon")
    assert flag.message.startswith("possible gradient masking: robust accuracy rises from")
    assert flag.details["high_accuracy"] > flag.details["low_accuracy"]


def test_a_weak_single_step_attack_is_flagged_as_not_converged(digits_cnn, data) -> None:
    result = _sweep(digits_cnn, data, attack=FGSMConfig(eps=0.1), epsilons=[0.1, 0.2])
    assert "not_converged" in _codes(result)
    flag = next(f for f in result.flags if f.code == "not_converged")
    assert flag.details["extra_fooled"] >= 2 and "PGD-30" in flag.message


def test_flags_and_reliability_serialise_to_json(digits_cnn, data) -> None:
    result = _sweep(
        _wrap(Softmaxed(digits_cnn.module)),
        data,
        sanity_config=SanityConfig(subset_size=16, convergence=False, black_box=False),
    )
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["reliable"] is False
    assert {"code", "message", "details"} <= set(payload["flags"][0])
    assert payload["sanity"]["skipped"]["not_converged"] == "turned off in the SanityConfig"
    assert payload["timings"]["sanity_seconds"] >= 0


def test_turning_sanity_off_leaves_reliability_unknown(digits_cnn, data) -> None:
    result = _sweep(digits_cnn, data, sanity=False)
    assert result.reliable is None and result.flags == [] and result.sanity_checks == []
    assert result.to_dict()["reliable"] is None


def test_run_sanity_checks_on_a_finished_result_matches_the_sweep(digits_cnn, data, normal_result) -> None:
    x, y = data
    flags = run_sanity_checks(digits_cnn, x, y, normal_result, seed=0, config=CHEAP)
    assert flags == []


def test_run_sanity_checks_refuses_data_the_result_was_not_computed_on(digits_cnn, data, normal_result) -> None:
    x, y = data
    with pytest.raises(EngineInputError, match="data_sha256"):
        run_sanity_checks(digits_cnn, x[:-1], y[:-1], normal_result, seed=0, config=CHEAP)


def test_sanity_checks_take_the_last_part_of_the_progress_bar(digits_cnn, data) -> None:
    seen: list[float] = []
    config = SanityConfig(subset_size=16, convergence_steps=5, convergence_restarts=1, black_box_queries=20)
    _sweep(
        digits_cnn,
        data,
        attack=PGDConfig(eps=0.1, steps=2),
        epsilons=[0.0, 0.1],
        progress=seen.append,
        sanity_config=config,
    )
    assert seen == sorted(seen) and seen[-1] == 1.0
    attack_part = [value for value in seen if value <= 0.85 + 1e-9]
    assert attack_part[-1] == pytest.approx(0.85)
    assert len(seen) - len(attack_part) >= 4  # several sanity steps report progress


def test_cancelling_during_the_sanity_checks_raises_cancelled(digits_cnn, data) -> None:
    calls = iter(range(1000))
    config = SanityConfig(subset_size=16, convergence_steps=5, convergence_restarts=1, black_box_queries=20)
    with pytest.raises(Cancelled):
        # 1 clean batch + 2 budgets = 3 checks in the sweep; the fifth check is inside the sanity run.
        _sweep(
            digits_cnn,
            data,
            attack=PGDConfig(eps=0.1, steps=2),
            epsilons=[0.0, 0.1],
            sanity_config=config,
            should_cancel=lambda: next(calls) >= 4,
        )


@pytest.mark.parametrize(
    "changes",
    [
        {"subset_size": 0},
        {"convergence": "yes"},
        {"black_box_queries": 1},
        {"monotonic_tolerance": -0.1},
        {"large_epsilon": 0.0},
    ],
)
def test_sanity_config_rejects_invalid_settings(changes: dict) -> None:
    with pytest.raises(InvalidConfigError):
        SanityConfig(**changes)
