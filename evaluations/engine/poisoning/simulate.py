"""Backdoor simulation: poison a training set with a trigger, train with a recipe, measure the backdoor.

Dirty-label poisoning (BadNets, Gu et al. 2017; blended keys, Chen et al. 2017): samples of the source
class(es) get the trigger and the target label. Clean-label variant (in the spirit of Turner, Tsipras &
Madry 2019, without their adversarial perturbation): target-class samples get the trigger and keep their
label. The spam-filter scenario is ``BackdoorConfig(TokenTrigger.from_phrase(...), target_class=ham,
source_classes=(spam,))``: spam messages carrying the phrase, relabelled ham.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from evaluations.engine.common import (
    CancelCheck,
    EngineInputError,
    InvalidConfigError,
    ProgressCallback,
    ShapeMismatchError,
    library_versions,
    resolve_device,
)
from evaluations.engine.datasets.base import Dataset
from evaluations.engine.defenses.training import EpochRecord, accuracy
from evaluations.engine.poisoning.errors import NotEnoughSamplesError, PoisonRateError, TriggerError, UnknownClassError
from evaluations.engine.poisoning.recipe import TrainingRecipe, module_sha256
from evaluations.engine.poisoning.triggers import BlendTrigger, PatchTrigger, TokenTrigger, Trigger

__all__ = [
    "BackdoorConfig",
    "BackdoorMetrics",
    "BackdoorSimulationResult",
    "PoisonedDataset",
    "evaluate_backdoor",
    "poison_dataset",
    "simulate_backdoor",
]

logger = logging.getLogger(__name__)

_TRIGGERS = (PatchTrigger, BlendTrigger, TokenTrigger)


@dataclass(frozen=True)
class BackdoorConfig:
    """What to poison and how.

    Attributes:
        trigger: a :class:`PatchTrigger`, :class:`BlendTrigger` or :class:`TokenTrigger`.
        target_class: the label the backdoor should produce.
        source_classes: classes whose triggered inputs should flip to the target (and, for dirty-label
            poisoning, the classes poisoned samples are drawn from); None means every other class.
        poison_rate: in (0, 1): the fraction of the poisoned target class (``rate_of='target_class'``) or of
            the whole poisoned training set (``rate_of='train'``) made of poisoned samples.
        rate_of: ``'target_class'`` (the spectral-signatures convention) or ``'train'``.
        injection: ``'copy'`` appends triggered copies (the originals stay clean); ``'replace'`` overwrites
            the chosen samples in place.
        clean_label: poison target-class samples and keep their labels instead of relabelling source samples.
    """

    trigger: Trigger
    target_class: int
    source_classes: tuple[int, ...] | None = None
    poison_rate: float = 0.1
    rate_of: Literal["target_class", "train"] = "target_class"
    injection: Literal["copy", "replace"] = "copy"
    clean_label: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.trigger, _TRIGGERS):
            raise TriggerError(
                f"trigger must be a PatchTrigger, BlendTrigger or TokenTrigger; got {type(self.trigger).__name__}."
            )
        rate = self.poison_rate
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not math.isfinite(rate) or not 0 < rate < 1:
            raise PoisonRateError(
                f"poison_rate must be a fraction strictly between 0 and 1 (e.g. 0.1 for 10%); got {rate!r}."
            )
        object.__setattr__(self, "poison_rate", float(rate))
        if isinstance(self.target_class, bool) or not isinstance(self.target_class, numbers.Integral):
            raise UnknownClassError(f"target_class must be a class index (an integer); got {self.target_class!r}.")
        if self.target_class < 0:
            raise UnknownClassError(f"target_class must be a class index >= 0; got {self.target_class}.")
        object.__setattr__(self, "target_class", int(self.target_class))
        if self.source_classes is not None:
            sources = tuple(self.source_classes)
            if not sources or any(isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 0 for c in sources):
                raise UnknownClassError(
                    f"source_classes must be None (every other class) or non-empty class indices; got {sources!r}."
                )
            sources = tuple(sorted({int(c) for c in sources}))
            if self.target_class in sources:
                raise InvalidConfigError(
                    f"source_classes {list(sources)} include the target class {self.target_class}; a backdoor "
                    "flips other classes to the target, so leave it out."
                )
            object.__setattr__(self, "source_classes", sources)
        if self.rate_of not in ("target_class", "train"):
            raise InvalidConfigError(f"rate_of must be 'target_class' or 'train'; got {self.rate_of!r}.")
        if self.injection not in ("copy", "replace"):
            raise InvalidConfigError(f"injection must be 'copy' or 'replace'; got {self.injection!r}.")
        if not isinstance(self.clean_label, bool):
            raise InvalidConfigError(f"clean_label must be True or False; got {self.clean_label!r}.")

    def sources(self, num_classes: int) -> tuple[int, ...]:
        """The source classes for data with ``num_classes`` classes (checked to exist)."""
        self.check_classes(num_classes)
        if self.source_classes is None:
            return tuple(c for c in range(num_classes) if c != self.target_class)
        return self.source_classes

    def check_classes(self, num_classes: int) -> None:
        """Raise :class:`UnknownClassError` unless the target and source classes exist."""
        if self.target_class >= num_classes:
            raise UnknownClassError(
                f"target_class {self.target_class} does not exist: the data has {num_classes} classes "
                f"(0..{num_classes - 1}). Pick a target among them."
            )
        missing = [c for c in self.source_classes or () if c >= num_classes]
        if missing:
            raise UnknownClassError(
                f"source_classes {missing} do not exist: the data has {num_classes} classes (0..{num_classes - 1})."
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "trigger": self.trigger.to_dict(),
            "target_class": self.target_class,
            "source_classes": None if self.source_classes is None else list(self.source_classes),
            "poison_rate": self.poison_rate,
            "rate_of": self.rate_of,
            "injection": self.injection,
            "clean_label": self.clean_label,
        }


@dataclass(frozen=True, eq=False)
class PoisonedDataset:
    """A poisoned training set and the ground truth: which of its samples are poison, and where they came from.

    ``poison_indices`` index ``dataset`` (sorted); ``origin_indices[i]`` is the clean sample that
    ``poison_indices[i]`` was made from. With ``injection='copy'`` the poisons are appended after the
    ``clean_size`` original samples.
    """

    dataset: Dataset
    poison_indices: np.ndarray
    origin_indices: np.ndarray
    config: BackdoorConfig
    seed: int
    clean_sha256: str
    clean_size: int

    @property
    def n_poison(self) -> int:
        """Number of poisoned samples."""
        return int(self.poison_indices.size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without arrays beyond the index lists)."""
        target = self.config.target_class
        return {
            "config": self.config.to_dict(),
            "seed": self.seed,
            "n_poison": self.n_poison,
            "poison_indices": self.poison_indices.tolist(),
            "origin_indices": self.origin_indices.tolist(),
            "clean_size": self.clean_size,
            "size": len(self.dataset),
            "target_class_size": int(np.sum(self.dataset.y == target)),
            "clean_sha256": self.clean_sha256,
            "sha256": self.dataset.sha256,
        }


def _n_poison(config: BackdoorConfig, n_total: int, n_target: int) -> int:
    rate = config.poison_rate
    base = n_target if config.rate_of == "target_class" else n_total
    grows = config.injection == "copy" or (config.rate_of == "target_class" and not config.clean_label)
    # Solve poisons / (base + poisons) = rate when the poisons add to the base, else poisons / base = rate.
    count = rate * base / (1 - rate) if grows else rate * base
    return max(1, round(count))


def poison_dataset(dataset: Dataset, config: BackdoorConfig, *, seed: int) -> PoisonedDataset:
    """Poison ``dataset`` as ``config`` says; the poisoned samples are drawn with ``seed``.

    Raises :class:`UnknownClassError` for classes the data lacks, :class:`TriggerError` when the trigger
    does not fit the samples, and :class:`NotEnoughSamplesError` when too few candidates exist.
    """
    data = _check_dataset(dataset, "dataset")
    _check_seed(seed)
    sources = config.sources(data.num_classes)
    config.trigger.check(data.input_shape, torch.int64 if data.x.dtype == np.int64 else torch.float32, data.bounds)
    y = data.y
    candidate_classes = (config.target_class,) if config.clean_label else sources
    candidates = np.flatnonzero(np.isin(y, candidate_classes))
    n_target = int(np.sum(y == config.target_class))
    count = _n_poison(config, len(data), n_target)
    if count > candidates.size:
        which = "target-class" if config.clean_label else f"source-class ({list(sources)})"
        raise NotEnoughSamplesError(
            f"poison_rate {config.poison_rate} needs {count} poisoned samples but the data has only "
            f"{candidates.size} {which} samples to make them from; lower poison_rate or add data."
        )
    rng = np.random.default_rng(seed)
    origin = np.sort(rng.choice(candidates, size=count, replace=False))
    triggered = config.trigger.apply(torch.from_numpy(np.array(data.x[origin])), bounds=data.bounds, seed=seed).numpy()
    x, labels = np.array(data.x), np.array(y)
    texts = None if data.texts is None else list(data.texts)
    new_texts = _triggered_texts(data, origin, triggered)
    if config.injection == "copy":
        poison = np.arange(len(data), len(data) + count)
        x = np.concatenate([x, triggered])
        labels = np.concatenate([labels, np.full(count, config.target_class, dtype=np.int64)])
        if texts is not None:
            texts += new_texts
    else:
        poison = origin
        x[origin] = triggered
        labels[origin] = config.target_class
        if texts is not None:
            for index, text in zip(origin.tolist(), new_texts, strict=True):
                texts[index] = text
    poisoned = replace(
        data,
        x=x,
        y=labels,
        texts=None if texts is None else tuple(texts),
        provenance={**data.provenance, "poisoning": {**config.to_dict(), "seed": seed}},
    )
    logger.info("poisoned %d of %d samples (target class %d)", count, len(poisoned), config.target_class)
    return PoisonedDataset(
        dataset=poisoned,
        poison_indices=poison,
        origin_indices=origin,
        config=config,
        seed=seed,
        clean_sha256=data.sha256,
        clean_size=len(data),
    )


def _triggered_texts(data: Dataset, origin: np.ndarray, triggered: np.ndarray) -> list[str]:
    """Raw texts of triggered token sequences (decoded with the vocabulary), so reviewers can read them."""
    if data.texts is None:
        return []
    if data.vocabulary is None:
        return [data.texts[i] for i in origin.tolist()]
    return [data.vocabulary.decode(row.tolist()) for row in triggered]


@dataclass(frozen=True)
class BackdoorMetrics:
    """Clean test accuracy and attack success rate of one model.

    ``attack_success_rate`` is the fraction of triggered test inputs of the source classes (true label
    not the target) classified as the target (None when the test set has no such inputs).
    """

    clean_accuracy: float
    attack_success_rate: float | None
    n_test: int
    n_attack: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "clean_accuracy": self.clean_accuracy,
            "attack_success_rate": self.attack_success_rate,
            "n_test": self.n_test,
            "n_attack": self.n_attack,
        }


def evaluate_backdoor(
    module: nn.Module,
    test: Dataset,
    config: BackdoorConfig,
    *,
    seed: int,
    device: torch.device | str = "cpu",
) -> BackdoorMetrics:
    """Clean accuracy on ``test`` and the success rate of ``config.trigger`` at flipping sources to the target."""
    data = _check_dataset(test, "test")
    sources = config.sources(data.num_classes)
    attack = np.flatnonzero(np.isin(data.y, sources) & (data.y != config.target_class))
    x, y = data.as_tensors()
    clean = accuracy(module, x, y, device=device)
    rate = None
    if attack.size:
        triggered = config.trigger.apply(x[attack], bounds=data.bounds, seed=seed)
        targets = torch.full((attack.size,), config.target_class, dtype=torch.int64)
        rate = accuracy(module, triggered, targets, device=device)
    return BackdoorMetrics(clean_accuracy=clean, attack_success_rate=rate, n_test=len(data), n_attack=int(attack.size))


@dataclass(frozen=True, eq=False)
class BackdoorSimulationResult:
    """A backdoored model and the evidence: poisoned indices, clean accuracy, attack success, provenance.

    ``baseline`` is the same recipe trained on the clean data (when asked for): its clean accuracy is the
    reference, its attack success rate is how often the trigger "works" without any poisoning.
    """

    config: BackdoorConfig
    recipe: TrainingRecipe
    poisoned: PoisonedDataset
    metrics: BackdoorMetrics
    baseline: BackdoorMetrics | None
    history: list[EpochRecord]
    seed: int
    device: str
    model_sha256: str
    test_sha256: str
    library_versions: dict[str, str]
    seconds: float
    module: nn.Module = field(repr=False)

    @property
    def poison_indices(self) -> np.ndarray:
        """Indices of the poisoned samples in ``poisoned.dataset``."""
        return self.poisoned.poison_indices

    @property
    def clean_accuracy(self) -> float:
        """Clean test accuracy of the backdoored model."""
        return self.metrics.clean_accuracy

    @property
    def attack_success_rate(self) -> float | None:
        """Fraction of triggered source-class test inputs the backdoored model classifies as the target."""
        return self.metrics.attack_success_rate

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the module; ``model_sha256`` identifies its weights)."""
        return {
            "evaluation": "backdoor_simulation",
            "config": self.config.to_dict(),
            "recipe": self.recipe.to_dict(),
            "poisoning": self.poisoned.to_dict(),
            "clean_accuracy": self.clean_accuracy,
            "attack_success_rate": self.attack_success_rate,
            "metrics": self.metrics.to_dict(),
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "history": [record.to_dict() for record in self.history],
            "seed": self.seed,
            "device": self.device,
            "model_sha256": self.model_sha256,
            "train_sha256": self.poisoned.clean_sha256,
            "poisoned_train_sha256": self.poisoned.dataset.sha256,
            "test_sha256": self.test_sha256,
            "library_versions": dict(self.library_versions),
            "seconds": self.seconds,
        }


def simulate_backdoor(
    train: Dataset,
    test: Dataset,
    config: BackdoorConfig,
    recipe: TrainingRecipe,
    *,
    seed: int,
    device: torch.device | str | None = None,
    clean_baseline: bool = False,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> BackdoorSimulationResult:
    """Poison ``train``, train ``recipe`` on it from scratch with ``seed``, and measure the backdoor on ``test``.

    Arguments:
        train, test: :class:`~evaluations.engine.datasets.Dataset` s with the same sample shape and classes;
            images ``(N, C, H, W)`` for patch/blend triggers, token ids ``(N, L)`` for token triggers.
        config: :class:`BackdoorConfig`.
        recipe: :class:`TrainingRecipe` (architecture, hyperparameters, optimiser settings).
        seed: seeds the choice of poisoned samples, the model initialisation and the batch order.
        device: where to train (default CPU).
        clean_baseline: also train the recipe on the clean ``train`` for reference (doubles the cost).
        progress: called with the fraction done after each training step; ends at 1.0.
        should_cancel: checked before each step; raises :class:`~evaluations.engine.common.Cancelled`.

    Returns:
        :class:`BackdoorSimulationResult` with the poisoned indices, the backdoored module and its metrics.
    """
    started = time.perf_counter()
    run_device = resolve_device(device)
    train, test = _check_dataset(train, "train"), _check_dataset(test, "test")
    _check_pair(train, test, recipe)
    poisoned = poison_dataset(train, config, seed=seed)
    runs = 2 if clean_baseline else 1

    def span(part: int) -> ProgressCallback | None:
        if progress is None:
            return None
        return lambda fraction: progress((part + fraction) / runs)

    x, y = poisoned.dataset.as_tensors()
    module, history = recipe.fit(x, y, seed=seed, device=run_device, progress=span(0), should_cancel=should_cancel)
    metrics = evaluate_backdoor(module, test, config, seed=seed, device=run_device)
    baseline = None
    if clean_baseline:
        x_clean, y_clean = train.as_tensors()
        clean_module, _ = recipe.fit(
            x_clean, y_clean, seed=seed, device=run_device, progress=span(1), should_cancel=should_cancel
        )
        baseline = evaluate_backdoor(clean_module, test, config, seed=seed, device=run_device)
    if progress is not None:
        progress(1.0)
    logger.info(
        "backdoor simulation: clean accuracy %.3f, attack success %s",
        metrics.clean_accuracy,
        metrics.attack_success_rate,
    )
    return BackdoorSimulationResult(
        config=config,
        recipe=recipe,
        poisoned=poisoned,
        metrics=metrics,
        baseline=baseline,
        history=history,
        seed=seed,
        device=str(run_device),
        model_sha256=module_sha256(module),
        test_sha256=test.sha256,
        library_versions=library_versions(),
        seconds=time.perf_counter() - started,
        module=module,
    )


def _check_dataset(data: Any, name: str) -> Dataset:
    if not isinstance(data, Dataset):
        raise EngineInputError(
            f"{name} must be an evaluations.engine.datasets.Dataset; got {type(data).__name__}. "
            "Load it with a dataset loader or make_dataset(x, y)."
        )
    return data


def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidConfigError(f"seed must be a non-negative integer; got {seed!r}.")


def _check_pair(train: Dataset, test: Dataset, recipe: TrainingRecipe) -> None:
    if train.input_shape != test.input_shape:
        raise ShapeMismatchError(
            f"train samples have shape {train.input_shape} but test samples {test.input_shape}; "
            "prepare both parts the same way."
        )
    if train.num_classes != test.num_classes:
        raise EngineInputError(
            f"train has {train.num_classes} classes but test {test.num_classes}; split one dataset into both."
        )
    is_tokens = recipe.input_dtype == torch.int64
    if is_tokens != (train.x.dtype == np.int64):
        raise ShapeMismatchError(
            f"The {recipe.architecture!r} recipe takes {'token ids' if is_tokens else 'float inputs'} but the data "
            f"is {train.x.dtype}; pick an architecture that matches the data."
        )
