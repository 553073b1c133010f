"""The per-class loop every detector shares: inputs, progress, cancellation with partial results, result."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from evaluations.engine.common import (
    CancelCheck,
    InvalidConfigError,
    ProgressCallback,
    library_versions,
    resolve_device,
)
from evaluations.engine.poisoning._geometry import ClassGeometry, Inputs, prepare_inputs
from evaluations.engine.poisoning.errors import DetectionCancelled
from evaluations.engine.poisoning.results import ClassDecision, DetectionResult, detection_metrics

ClassStep = Callable[[ClassGeometry, int, np.ndarray], tuple[ClassDecision, np.ndarray, np.ndarray]]
"""``step(geometry, label, positions)`` -> (decision, flagged mask over positions, scores over positions)."""


def check_seed(seed: Any) -> int:
    """``seed`` as a non-negative int, or :class:`InvalidConfigError`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidConfigError(f"seed must be a non-negative integer; got {seed!r}.")
    return seed


def run_per_class(
    method: str,
    config: dict[str, Any],
    features: Any,
    labels: Any,
    step: ClassStep,
    *,
    ridge: float,
    max_dims: int,
    seed: int,
    device: torch.device | str | None,
    poison_indices: Any,
    sample_ids: Sequence[Any] | None,
    progress: ProgressCallback | None,
    should_cancel: CancelCheck | None,
) -> DetectionResult:
    """Validate inputs, run ``step`` on each class in label order and assemble the :class:`DetectionResult`.

    On cancellation raises :class:`DetectionCancelled` whose ``partial`` is a result over the classes done.
    """
    started = time.perf_counter()
    check_seed(seed)
    inputs = prepare_inputs(
        features, labels, poison_indices=poison_indices, sample_ids=sample_ids, device=resolve_device(device)
    )
    geometry = ClassGeometry(inputs.features, inputs.labels, ridge=ridge, max_dims=max_dims)
    n = inputs.labels_np.shape[0]
    flagged = np.zeros(n, dtype=bool)
    scores = np.zeros(n, dtype=np.float64)
    decisions: list[ClassDecision] = []
    for done, label in enumerate(geometry.classes):
        if should_cancel is not None and should_cancel():
            partial = _result(method, config, inputs, flagged, scores, decisions, seed, started, complete=False)
            raise DetectionCancelled(
                f"Detection was cancelled after {done} of {len(geometry.classes)} classes.", partial
            )
        positions = geometry.index[label].cpu().numpy()
        decision, mask, class_scores = step(geometry, int(label), positions)
        flagged[positions] = mask
        scores[positions] = class_scores
        decisions.append(decision)
        if progress is not None:
            progress((done + 1) / len(geometry.classes))
    return _result(method, config, inputs, flagged, scores, decisions, seed, started, complete=True)


def _result(
    method: str,
    config: dict[str, Any],
    inputs: Inputs,
    flagged: np.ndarray,
    scores: np.ndarray,
    decisions: list[ClassDecision],
    seed: int,
    started: float,
    *,
    complete: bool,
) -> DetectionResult:
    positions = np.flatnonzero(flagged)
    metrics = None
    if inputs.poison is not None and complete:
        metrics = detection_metrics(positions, inputs.poison, inputs.labels_np)
    return DetectionResult(
        method=method,
        config={**config, "complete": complete},
        flagged_indices=positions,
        flagged_ids=[inputs.sample_ids[i] for i in positions.tolist()],
        scores=scores,
        classes=list(decisions),
        metrics=metrics,
        seed=seed,
        n_samples=int(inputs.labels_np.shape[0]),
        feature_dim=int(inputs.features.shape[1]),
        features_sha256=inputs.features_sha256,
        labels_sha256=inputs.labels_sha256,
        library_versions=library_versions(),
        seconds=time.perf_counter() - started,
    )
