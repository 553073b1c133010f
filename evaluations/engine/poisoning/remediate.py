"""Remediation: drop or relabel flagged training samples, retrain with the same recipe and seed, re-measure."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from evaluations.engine.common import (
    CancelCheck,
    EmptyDatasetError,
    InvalidConfigError,
    ProgressCallback,
    ShapeMismatchError,
    library_versions,
    resolve_device,
)
from evaluations.engine.datasets.base import Dataset
from evaluations.engine.poisoning.recipe import TrainingRecipe, module_sha256
from evaluations.engine.poisoning.simulate import (
    BackdoorConfig,
    BackdoorMetrics,
    _check_dataset,
    _check_pair,
    evaluate_backdoor,
)

__all__ = ["RemediationResult", "remediate"]

logger = logging.getLogger(__name__)

Action = Literal["drop", "relabel"]


@dataclass(frozen=True, eq=False)
class RemediationResult:
    """Backdoor success and clean accuracy before and after cleaning the training set and retraining.

    ``before`` is measured on the given model (or, without one, on the recipe retrained on the poisoned
    data with the same seed); ``after`` on the model retrained on the cleaned data. ``relabelled`` maps
    each relabelled position to its new label (``'relabel'`` only).
    """

    action: Action
    before: BackdoorMetrics
    after: BackdoorMetrics
    flagged_indices: np.ndarray
    relabelled: dict[int, int]
    recipe: TrainingRecipe
    backdoor: BackdoorConfig
    seed: int
    device: str
    reference_clean_accuracy: float | None
    data_sha256_before: str
    data_sha256_after: str
    test_sha256: str
    model_sha256_before: str
    model_sha256_after: str
    library_versions: dict[str, str]
    seconds: float
    module: nn.Module = field(repr=False)

    @property
    def clean_accuracy_drop(self) -> float | None:
        """Reference clean accuracy minus the remediated model's (None without a reference)."""
        if self.reference_clean_accuracy is None:
            return None
        return self.reference_clean_accuracy - self.after.clean_accuracy

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the module)."""
        return {
            "remediation": self.action,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "n_flagged": int(self.flagged_indices.size),
            "flagged_indices": self.flagged_indices.tolist(),
            "relabelled": {str(k): v for k, v in self.relabelled.items()},
            "recipe": self.recipe.to_dict(),
            "backdoor": self.backdoor.to_dict(),
            "seed": self.seed,
            "device": self.device,
            "reference_clean_accuracy": self.reference_clean_accuracy,
            "clean_accuracy_drop": self.clean_accuracy_drop,
            "data_sha256_before": self.data_sha256_before,
            "data_sha256_after": self.data_sha256_after,
            "test_sha256": self.test_sha256,
            "model_sha256_before": self.model_sha256_before,
            "model_sha256_after": self.model_sha256_after,
            "library_versions": dict(self.library_versions),
            "seconds": self.seconds,
        }


def remediate(
    train: Dataset,
    test: Dataset,
    flagged_indices: np.ndarray | Sequence[int],
    backdoor: BackdoorConfig,
    recipe: TrainingRecipe,
    *,
    action: Action = "drop",
    seed: int,
    device: torch.device | str | None = None,
    model: nn.Module | None = None,
    reference_clean_accuracy: float | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> RemediationResult:
    """Clean ``train`` of the flagged samples and retrain ``recipe`` from scratch with ``seed``.

    ``'drop'`` removes the flagged samples. ``'relabel'`` first trains on the data without them, lets that
    model predict their labels (a backdoor trigger means nothing to it), and retrains on all samples with
    those labels. The backdoor (``backdoor``'s trigger, source and target classes) is measured on ``test``
    before and after; ``reference_clean_accuracy`` (e.g. a simulation's clean baseline) is recorded to
    compare clean accuracy against.

    Arguments:
        train: the (possibly poisoned) training set the flags index.
        test: held-out data for clean accuracy and attack success.
        flagged_indices: positions in ``train`` to drop or relabel (e.g. ``DetectionResult.flagged_indices``).
        backdoor: the trigger and classes to measure attack success with.
        recipe: the training recipe the model was trained with.
        model: the model trained on ``train``; None retrains it (same recipe and seed) to measure "before".
        progress, should_cancel: as in :func:`simulate_backdoor`; cancellation raises ``Cancelled``.
    """
    started = time.perf_counter()
    if action not in ("drop", "relabel"):
        raise InvalidConfigError(f"action must be 'drop' or 'relabel'; got {action!r}.")
    run_device = resolve_device(device)
    train, test = _check_dataset(train, "train"), _check_dataset(test, "test")
    _check_pair(train, test, recipe)
    flagged = np.unique(np.asarray(flagged_indices, dtype=np.int64).reshape(-1))
    if flagged.size and (flagged[0] < 0 or flagged[-1] >= len(train)):
        raise ShapeMismatchError(
            f"flagged_indices must be positions in [0, {len(train)}) of the training set; got values from "
            f"{int(flagged[0])} to {int(flagged[-1])}."
        )
    keep = np.setdiff1d(np.arange(len(train)), flagged)
    if keep.size == 0:
        raise EmptyDatasetError("Every training sample is flagged; nothing would be left to retrain on.")
    fits = 1 + (model is None) + (action == "relabel")
    done = 0

    def span() -> ProgressCallback | None:
        nonlocal done
        part = done
        done += 1
        return None if progress is None else (lambda f: progress((part + f) / fits))

    if model is None:
        model, _ = recipe.fit(
            *train.as_tensors(), seed=seed, device=run_device, progress=span(), should_cancel=should_cancel
        )
    before = evaluate_backdoor(model, test, backdoor, seed=seed, device=run_device)
    kept = train.subset(keep, remediation={"action": "drop", "n_dropped": int(flagged.size)})
    module, _ = recipe.fit(
        *kept.as_tensors(), seed=seed, device=run_device, progress=span(), should_cancel=should_cancel
    )
    relabelled: dict[int, int] = {}
    cleaned = kept
    if action == "relabel" and flagged.size:
        x_flagged = torch.tensor(train.x[flagged])
        with torch.inference_mode():
            predicted = module.to(run_device).eval()(x_flagged.to(run_device)).argmax(dim=1).cpu().numpy()
        labels = np.array(train.y)
        labels[flagged] = predicted
        relabelled = {int(i): int(p) for i, p in zip(flagged.tolist(), predicted.tolist(), strict=True)}
        cleaned = replace(
            train,
            y=labels,
            provenance={**train.provenance, "remediation": {"action": "relabel", "n_relabelled": int(flagged.size)}},
        )
        module, _ = recipe.fit(
            *cleaned.as_tensors(), seed=seed, device=run_device, progress=span(), should_cancel=should_cancel
        )
    after = evaluate_backdoor(module, test, backdoor, seed=seed, device=run_device)
    if progress is not None:
        progress(1.0)
    logger.info(
        "remediation (%s): attack success %s -> %s, clean accuracy %.3f -> %.3f",
        action,
        before.attack_success_rate,
        after.attack_success_rate,
        before.clean_accuracy,
        after.clean_accuracy,
    )
    return RemediationResult(
        action=action,
        before=before,
        after=after,
        flagged_indices=flagged,
        relabelled=relabelled,
        recipe=recipe,
        backdoor=backdoor,
        seed=seed,
        device=str(run_device),
        reference_clean_accuracy=reference_clean_accuracy,
        data_sha256_before=train.sha256,
        data_sha256_after=cleaned.sha256,
        test_sha256=test.sha256,
        model_sha256_before=module_sha256(model),
        model_sha256_after=module_sha256(module),
        library_versions=library_versions(),
        seconds=time.perf_counter() - started,
        module=module,
    )
