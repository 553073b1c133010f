r"""Token-level backdoor trigger detection for text: which word or phrase holds samples in their label?

A dirty-label text backdoor (the spam-filter scenario: spam carrying a trigger phrase, relabelled ham) leaves
samples whose label rests on the trigger alone: take the phrase out and they read as another class. Feature-
space detectors (spectral signatures, activation clustering) miss this on mean-embedding models, whose
penultimate features barely separate the poison. This detector tests the words themselves:

1. **Candidates** (as in BKI, Chen & Dai 2021, "Mitigating backdoor attacks in LSTM-based text classification
   systems by Backdoor Keyword Identification"): every word and contiguous phrase of up to ``max_ngram`` words
   that occurs in at least ``min_support`` samples of a class.
2. **Leave-the-word-out reclassification** (ONION, Qi et al. 2021, scores a word by what removing it changes;
   exclusionary reclassification, Chen et al. 2018, asks whether a sample still belongs to its class without
   the suspect part): for each candidate and each sample of the class carrying it, the sample with every
   occurrence of the candidate removed is classified again. A *flip* is a carrier the judge gives its label
   with the candidate and not without it. The judge is the trained model (model-based entry) or, with no model
   (data-only entry), an L2 logistic regression on word presence fitted on all samples. (A judge cross-fitted
   so that no sample judges itself was measured and rejected: with 15 poisoned messages among 5,000 its fold
   models learn the trigger too weakly, and only 7 of the 15 flip. Memorising single samples does not pass for
   a trigger here, because a candidate needs ``min_support`` carriers that all rest on it.) Fold models fitted
   without each sample still give the judge's held-out recall per class, used in step 4.
3. **A robust decision per class**: a candidate's statistic is the smoothed log-odds of its flip fraction,
   ``logit((flips + 0.5) / (carriers + 1))``; it is flagged when that lies ``k`` robust standard deviations
   (1.4826 MAD) above the median over all of the class's candidates, **and** at least ``min_flip_fraction`` of
   its carriers flip (an absolute floor, so a class where nothing stands out flags nothing). A word that is
   merely frequent in the class keeps its carriers in the class when removed (the rest of the text still
   reads as that class), so it does not flip and is not flagged.
4. **Flags**: the carriers of a flagged candidate that are outside their label without it; or all its
   carriers when it is carried by poison alone: poison made from class ``d`` is left outside the label about as
   often as the judge recognises genuine ``d`` samples it did not train on (its held-out recall), so unless a
   one-sided binomial test at ``exclusive_alpha`` says fewer carriers are left outside than that, every carrier
   is flagged (this catches poison made from source samples that look like the target class even without the
   trigger). The class's reason names the candidates (longest phrase first, sub-phrases folded in).

Two entry points return the engine's :class:`DetectionResult`: :func:`detect_text_poison` (raw texts, no model,
tokenised with :func:`evaluations.engine.datasets.text.tokenize`) and :func:`detect_token_triggers_in_model`
(a text :class:`Dataset` of token ids ``(N, L)`` and the classifier trained on it, e.g. ``text_embeddingbag``).
``scores`` are per-sample suspicion: the largest robust z of a candidate whose removal flips the sample (0 when
none does).
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from evaluations.engine.common import (
    CancelCheck,
    EmptyDatasetError,
    InvalidConfigError,
    LabelOutOfRangeError,
    ProgressCallback,
    ShapeMismatchError,
    library_versions,
    resolve_device,
    sha256_arrays,
)
from evaluations.engine.datasets.base import Dataset
from evaluations.engine.datasets.text import tokenize
from evaluations.engine.models.classifier import TorchClassifier
from evaluations.engine.poisoning._runner import check_seed
from evaluations.engine.poisoning.errors import DetectionCancelled
from evaluations.engine.poisoning.recipe import module_sha256
from evaluations.engine.poisoning.results import ClassDecision, DetectionResult, detection_metrics
from evaluations.engine.poisoning.text_triggers_scoring import (
    Judge,
    LinearBagOfWordsJudge,
    ModelJudge,
    _Stop,
    remove_units,
)
from evaluations.engine.poisoning.text_triggers_units import Units, enumerate_units, exclusive, name_flagged, phrase

__all__ = ["TextTriggerConfig", "detect_text_poison", "detect_token_triggers_in_model"]

METHOD = "token_triggers"
_MAD_TO_SD = 1.4826
_CHUNK = 8192
_NAMED = 5


@dataclass(frozen=True)
class TextTriggerConfig:
    """Settings of the token-trigger detector.

    Attributes:
        max_ngram: longest candidate phrase, in words (1 tests single words only).
        min_support: a candidate is judged in a class only if at least this many of the class's samples carry it.
        k: robust threshold: the candidate's flip log-odds must lie ``k`` x 1.4826 MAD above the class median.
        min_flip_fraction: ... and at least this fraction of its carriers must flip (floor in (0, 1]).
        exclusive_alpha: a flagged candidate has all its carriers flagged (not only those its removal leaves
            outside their label) unless a one-sided binomial test at this level says fewer are left outside
            than if every carrier were poison (the judge's recall of the class they would fall into).
        folds: folds for the data-only judge's held-out recall per class (its fold models), >= 2.
        regularization: inverse L2 strength ``C`` of that logistic regression.
        batch_size: edited samples per forward pass of the model-based judge.
    """

    max_ngram: int = 3
    min_support: int = 10
    k: float = 4.0
    min_flip_fraction: float = 0.5
    exclusive_alpha: float = 0.05
    folds: int = 5
    regularization: float = 10.0
    batch_size: int = 4096

    def __post_init__(self) -> None:
        for name, low in (("max_ngram", 1), ("min_support", 2), ("folds", 2), ("batch_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise InvalidConfigError(f"{name} must be an integer >= {low}; got {value!r}.")
        if self.max_ngram > 8:
            raise InvalidConfigError(f"max_ngram must be at most 8 (trigger phrases are short); got {self.max_ngram}.")
        for name in ("k", "regularization"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
                raise InvalidConfigError(f"{name} must be a finite number > 0; got {value!r}.")
        for name, example in (("min_flip_fraction", 0.5), ("exclusive_alpha", 0.05)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 1:
                raise InvalidConfigError(f"{name} must be in (0, 1], e.g. {example}; got {value!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _detect(
    x: np.ndarray,
    labels: np.ndarray,
    judge_factory: Any,
    config: TextTriggerConfig,
    *,
    words: Sequence[str] | None,
    seed: int,
    poison: np.ndarray | None,
    sample_ids: list[Any],
    judge_name: str,
    progress: ProgressCallback | None,
    should_cancel: CancelCheck | None,
) -> DetectionResult:
    """The shared detector over padded token ids ``x`` ``(N, L)``; see the module docstring."""
    started = time.perf_counter()
    n = labels.shape[0]
    classes = np.unique(labels).tolist()
    flagged = np.zeros(n, dtype=bool)
    scores = np.zeros(n, dtype=np.float64)
    decisions: list[ClassDecision] = []
    stored = {**config.to_dict(), "judge": judge_name}

    def result(*, complete: bool) -> DetectionResult:
        positions = np.flatnonzero(flagged)
        metrics = detection_metrics(positions, poison, labels) if poison is not None and complete else None
        return DetectionResult(
            method=METHOD,
            config={**stored, "complete": complete},
            flagged_indices=positions,
            flagged_ids=[sample_ids[i] for i in positions.tolist()],
            scores=scores,
            classes=list(decisions),
            metrics=metrics,
            seed=seed,
            n_samples=n,
            feature_dim=len(words) if words is not None else int(x.max(initial=0)) + 1,
            features_sha256=sha256_arrays(x),
            labels_sha256=sha256_arrays(labels),
            library_versions=library_versions(),
            seconds=time.perf_counter() - started,
        )

    def cancelled(stage: str) -> DetectionCancelled:
        return DetectionCancelled(f"Token-trigger detection was cancelled {stage}.", result(complete=False))

    def report(fraction: float) -> None:
        if progress is not None:
            progress(fraction)

    if should_cancel is not None and should_cancel():
        raise cancelled("before it started")
    units = enumerate_units(x, config.max_ngram)
    report(0.05)
    try:
        judge: Judge = judge_factory(should_cancel)
        n_out = judge.base().shape[1]
    except _Stop:
        raise cancelled("while fitting the judge") from None
    if labels.size and int(labels.max()) >= n_out:
        raise LabelOutOfRangeError(
            f"labels go up to {int(labels.max())} but the model has {n_out} outputs; pass the data the model was "
            "trained on, with the same class indices."
        )
    base = judge.base().argmax(axis=1)
    recall = getattr(judge, "heldout_recall", None)
    if recall is None:  # the trained model: its recall on its own training data is all there is
        recall = np.array([np.mean(base[labels == c] == c) if np.any(labels == c) else 1.0 for c in range(n_out)])
    report(0.3)
    pair_label = labels[units.sample_of_pair]
    for done, label in enumerate(classes):
        if should_cancel is not None and should_cancel():
            raise cancelled(f"after {done} of {len(classes)} classes")
        in_class = pair_label == label
        class_units, support = np.unique(units.unit_of_pair[in_class], return_counts=True)
        judged = class_units[support >= config.min_support]
        n_class = int(np.sum(labels == label))
        pairs = np.flatnonzero(in_class & np.isin(units.unit_of_pair, judged))
        margin = np.zeros(pairs.size)
        destination = np.zeros(pairs.size, dtype=np.int64)
        for length in range(1, config.max_ngram + 1):
            of_length = np.flatnonzero(units.lengths[units.unit_of_pair[pairs]] == length)
            for start in range(0, of_length.size, _CHUNK):
                if should_cancel is not None and should_cancel():
                    raise cancelled(f"after {done} of {len(classes)} classes")
                chunk = pairs[of_length[start : start + _CHUNK]]
                samples = units.sample_of_pair[chunk]
                grams = units.grams[units.unit_of_pair[chunk], :length]
                edited = remove_units(x, samples, grams)
                logp = judge.edited(edited, samples)
                others = np.delete(logp, label, axis=1) if logp.shape[1] > 1 else np.full((logp.shape[0], 1), -np.inf)
                margin[of_length[start : start + _CHUNK]] = others.max(axis=1) - logp[:, label]
                logp[:, label] = -np.inf
                destination[of_length[start : start + _CHUNK]] = logp.argmax(axis=1)
        # A flip: the sample is given its label with the candidate, and not without it. Candidates are judged on
        # their flips; a flagged candidate's carriers are flagged when they are outside their label without it
        # (``lost``: also a poison whose trigger the judge learnt too weakly to hold it in the label), or all of
        # them when the candidate is carried by poison alone (see ``exclusive``).
        lost = margin > 0
        flips = lost & (base[units.sample_of_pair[pairs]] == label)
        index = np.searchsorted(judged, units.unit_of_pair[pairs])
        carriers = np.bincount(index, minlength=judged.size)
        flip_counts = np.bincount(index, weights=flips, minlength=judged.size)
        poison_only = exclusive(index, lost, destination, carriers, recall, config.exclusive_alpha)
        decision, unit_z, is_flagged = _decide(
            label, n_class, judged, carriers, flip_counts, poison_only, units, config, words
        )
        pair_flagged = is_flagged[index] & (lost | poison_only[index])
        flagged[units.sample_of_pair[pairs[pair_flagged]]] = True
        np.maximum.at(scores, units.sample_of_pair[pairs[lost]], np.maximum(unit_z[index[lost]], 0.0))
        decisions.append(replace(decision, n_flagged=int(np.sum(flagged & (labels == label)))))
        report(0.3 + 0.7 * (done + 1) / len(classes))
    return result(complete=True)


def _decide(
    label: int,
    n_class: int,
    judged: np.ndarray,
    carriers: np.ndarray,
    flips: np.ndarray,
    poison_only: np.ndarray,
    units: Units,
    config: TextTriggerConfig,
    words: Sequence[str] | None,
) -> tuple[ClassDecision, np.ndarray, np.ndarray]:
    """The class's verdict from its candidates' carrier and flip counts; also each candidate's robust z."""
    if judged.size == 0:
        reason = f"no word or phrase occurs in {config.min_support} or more samples of this class: not judged"
        empty = np.zeros(0, dtype=bool)
        return ClassDecision(label, n_class, False, 0, {"n_candidates": 0}, reason), np.zeros(0), empty
    log_odds = np.log((flips + 0.5) / (carriers - flips + 0.5))
    median = float(np.median(log_odds))
    scale = max(_MAD_TO_SD * float(np.median(np.abs(log_odds - median))), 1e-6)
    z = (log_odds - median) / scale
    fraction = flips / carriers
    is_flagged = (z >= config.k) & (fraction >= config.min_flip_fraction)
    top = int(np.argmax(np.where(carriers > 0, z, -np.inf)))
    candidates = [
        {
            "phrase": phrase(units.grams[judged[i]], int(units.lengths[judged[i]]), words),
            "length": int(units.lengths[judged[i]]),
            "carriers": int(carriers[i]),
            "flips": int(flips[i]),
            "flip_fraction": float(fraction[i]),
            "z": float(z[i]),
            "all_carriers_flagged": bool(poison_only[i]),
        }
        for i in np.flatnonzero(is_flagged).tolist()
    ]
    named = name_flagged(candidates)
    statistics: dict[str, Any] = {
        "n_candidates": int(judged.size),
        "median_log_odds": median,
        "robust_sd": scale,
        "max_z": float(z[top]),
        "max_z_phrase": phrase(units.grams[judged[top]], int(units.lengths[judged[top]]), words),
        "max_z_flip_fraction": float(fraction[top]),
        "trigger_phrases": [c["phrase"] for c in named],
        "triggers": named[:20],
    }
    if named:
        listed = ", ".join(
            f"'{c['phrase']}' ({c['flips']} of {c['carriers']} carriers flip, z {c['z']:.1f})" for c in named[:_NAMED]
        )
        more = f" and {len(named) - _NAMED} more" if len(named) > _NAMED else ""
        reason = f"suspected trigger {'phrases' if len(named) > 1 else 'phrase'} {listed}{more}"
    else:
        reason = (
            f"no trigger: the most suspicious candidate '{statistics['max_z_phrase']}' has z {statistics['max_z']:.1f} "
            f"(needs >= {config.k}) and {statistics['max_z_flip_fraction']:.0%} of its carriers flip "
            f"(needs >= {config.min_flip_fraction:.0%})"
        )
    return ClassDecision(label, n_class, bool(named), 0, statistics, reason), z, is_flagged


def _check_labels(labels: Any, n: int) -> np.ndarray:
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ShapeMismatchError(f"labels must have one entry per sample ({n}); got shape {y.shape}.")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or int(y.min()) < 0):
        raise LabelOutOfRangeError("labels must be non-negative integer class indices; encode them as 0..C-1.")
    return y.astype(np.int64)


def _check_poison(poison_indices: Any, n: int) -> np.ndarray | None:
    if poison_indices is None:
        return None
    poison = np.unique(np.asarray(poison_indices, dtype=np.int64).reshape(-1))
    if poison.size and (poison[0] < 0 or poison[-1] >= n):
        raise ShapeMismatchError(
            f"poison_indices must be positions in [0, {n}); got {int(poison[0])}..{int(poison[-1])}."
        )
    return poison


def detect_text_poison(
    texts: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    *,
    config: TextTriggerConfig | None = None,
    seed: int = 0,
    poison_indices: Sequence[int] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> DetectionResult:
    """Find trigger words/phrases in labelled raw ``texts`` without a trained model (data-only entry point).

    The judge is a logistic regression on word presence, with ``config.folds`` fold models (drawn with
    ``seed``) for its held-out recall. ``labels`` are class indices, one per text. ``poison_indices``
    (positions of known poison) add precision/recall. ``progress`` gets fractions in [0, 1]; ``cancel`` is
    checked between stages and batches, and cancellation raises :class:`DetectionCancelled` holding the
    classes finished so far. Flagged ids are positions into ``texts``; each flagged class's reason names
    the suspected triggers.
    """
    config = config or TextTriggerConfig()
    check_seed(seed)
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise ShapeMismatchError("texts must be a sequence of strings, one per sample.")
    if len(texts) == 0:
        raise EmptyDatasetError("There are no texts to inspect; pass at least one labelled text.")
    y = _check_labels(labels, len(texts))
    poison = _check_poison(poison_indices, len(texts))
    tokens = [tokenize(text) for text in texts]
    index: dict[str, int] = {}
    words = ["<pad>"]
    for row in tokens:
        for word in row:
            if word not in index:
                index[word] = len(words)
                words.append(word)
    x = np.zeros((len(tokens), max(1, max(len(row) for row in tokens))), dtype=np.int64)
    for i, row in enumerate(tokens):
        x[i, : len(row)] = [index[word] for word in row]
    n_classes = int(y.max()) + 1

    def factory(should_cancel: CancelCheck | None) -> Judge:
        return LinearBagOfWordsJudge(
            x,
            y,
            vocab_size=len(words),
            n_classes=n_classes,
            folds=config.folds,
            regularization=config.regularization,
            seed=seed,
            should_cancel=should_cancel,
        )

    return _detect(
        x,
        y,
        factory,
        config,
        words=words,
        seed=seed,
        poison=poison,
        sample_ids=list(range(len(texts))),
        judge_name="bag_of_words",
        progress=progress,
        should_cancel=cancel,
    )


def detect_token_triggers_in_model(
    model: nn.Module | TorchClassifier,
    data: Dataset,
    config: TextTriggerConfig | None = None,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    poison_indices: np.ndarray | Sequence[int] | None = None,
    sample_ids: Sequence[Any] | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> DetectionResult:
    """Find trigger words/phrases in a token-id training set using the model trained on it (model-based entry).

    ``data.x`` is int64 token ids ``(N, L)`` right-padded with 0; ``data.vocabulary`` (when present) names the
    tokens in the reasons. The model classifies every carrier with each candidate removed. The result records
    the model's weight hash and the data hash like :func:`detect_poison_in_model`.
    """
    config = config or TextTriggerConfig()
    check_seed(seed)
    if not isinstance(data, Dataset) or data.x.dtype != np.int64 or data.x.ndim != 2:
        raise ShapeMismatchError(
            "Token-trigger detection needs a text Dataset of int64 token ids (N, L); for images and tabular data "
            "use detect_poison_in_model's feature-space detectors."
        )
    poison = _check_poison(poison_indices, len(data))
    ids = list(range(len(data))) if sample_ids is None else list(sample_ids)
    if len(ids) != len(data):
        raise ShapeMismatchError(f"sample_ids has {len(ids)} entries but there are {len(data)} samples.")
    module = model.module if isinstance(model, TorchClassifier) else model
    run_device = resolve_device(device)
    x = np.array(data.x)
    words = None if data.vocabulary is None else data.vocabulary.tokens

    def factory(should_cancel: CancelCheck | None) -> Judge:
        return ModelJudge(module, x, device=run_device, batch_size=config.batch_size)

    result = _detect(
        x,
        _check_labels(data.y, len(data)),
        factory,
        config,
        words=words,
        seed=seed,
        poison=poison,
        sample_ids=ids,
        judge_name="model",
        progress=progress,
        should_cancel=should_cancel,
    )
    sha = model.sha256 if isinstance(model, TorchClassifier) and model.sha256 else module_sha256(module)
    return replace(result, model_sha256=sha, data_sha256=data.sha256, library_versions=library_versions())
