"""The two judges of the token-trigger detector: a cross-fitted linear bag-of-words model, or the trained model.

Both answer the same question for a batch of edited token sequences: which class would the sample be given
with a candidate token or phrase removed? :func:`remove_units` makes those edited sequences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from torch import nn

__all__ = ["LinearBagOfWordsJudge", "ModelJudge", "remove_units"]

PAD_ID = 0


class Judge(Protocol):
    """Predicts labels of whole samples (``base``) and of edited copies of them (``edited``)."""

    def base(self) -> np.ndarray:
        """``(N, C)`` log-probabilities of the unedited samples (out of fold for the linear judge)."""
        ...

    def edited(self, rows: np.ndarray, samples: np.ndarray) -> np.ndarray:
        """``(P, C)`` log-probabilities of the edited token rows ``(P, L)`` made from ``samples`` ``(P,)``."""
        ...


def remove_units(x: np.ndarray, samples: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Copies of rows ``x[samples]`` with every occurrence of the n-gram ``units[p]`` taken out.

    ``x`` is ``(N, L)`` token ids right-padded with 0; ``units`` is ``(P, n)`` (one n-gram length per
    call). The remaining tokens keep their order and move left; the freed places become padding.
    """
    rows = x[samples]
    p, length = rows.shape
    n = units.shape[1]
    removed = np.zeros((p, length), dtype=bool)
    if n <= length:
        windows = np.lib.stride_tricks.sliding_window_view(rows, n, axis=1)  # (P, L - n + 1, n)
        starts = np.all(windows == units[:, None, :], axis=2)
        for offset in range(n):
            removed[:, offset : offset + starts.shape[1]] |= starts
    keep = ~removed & (rows != PAD_ID)
    order = np.argsort(~keep, axis=1, kind="stable")
    compact = np.take_along_axis(rows, order, axis=1)
    compact[np.arange(length)[None, :] >= keep.sum(axis=1)[:, None]] = PAD_ID
    return compact


def _presence(rows: np.ndarray, vocab_size: int):  # noqa: ANN202 - a scipy sparse matrix
    """Binary bag-of-words ``(P, V)`` of token rows (padding dropped)."""
    from scipy import sparse

    r, c = np.nonzero(rows != PAD_ID)
    matrix = sparse.csr_matrix((np.ones(r.size, dtype=np.float64), (r, rows[r, c])), shape=(rows.shape[0], vocab_size))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


class LinearBagOfWordsJudge:
    """L2 logistic regression on word presence, fitted on all samples, judges the edited samples; fold models
    fitted without each sample give the held-out recall per class (how often a genuine member of a class is
    recognised on data the judge did not train on), which the detector needs to tell poison-only phrases."""

    def __init__(
        self,
        x: np.ndarray,
        labels: np.ndarray,
        *,
        vocab_size: int,
        n_classes: int,
        folds: int,
        regularization: float,
        seed: int,
        should_cancel: Callable[[], bool] | None = None,
    ) -> None:
        from sklearn.model_selection import StratifiedKFold

        self.vocab_size = vocab_size
        self.n_classes = n_classes
        self.regularization = regularization
        self.seed = seed
        n = labels.shape[0]
        features = _presence(x, vocab_size)
        self.weight, self.bias = self._fit(features, labels, np.arange(n))
        self._base = self._scores(features, self.weight, self.bias)
        counts = np.bincount(labels, minlength=n_classes)
        splits = min(folds, int(counts[counts > 0].min())) if np.count_nonzero(counts) > 1 else 1
        held_out = self._base.argmax(axis=1)  # a class too small to split: in-sample recall
        if splits >= 2:
            held_out = np.zeros(n, dtype=np.int64)
            splitter = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
            for train, test in splitter.split(np.zeros(n), labels):
                if should_cancel is not None and should_cancel():
                    raise _Stop
                weight, bias = self._fit(features, labels, train)
                held_out[test] = self._scores(features[test], weight, bias).argmax(axis=1)
        self.heldout_recall = np.array(
            [np.mean(held_out[labels == c] == c) if counts[c] else 1.0 for c in range(n_classes)]
        )

    def _fit(self, features, labels: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
        from sklearn.linear_model import LogisticRegression

        weight = np.zeros((self.n_classes, self.vocab_size))
        bias = np.full(self.n_classes, -np.inf)
        present = np.unique(labels[rows])
        if present.size < 2:
            bias[present] = 0.0
            return weight, bias
        model = LogisticRegression(C=self.regularization, max_iter=2000, random_state=self.seed)
        model.fit(features[rows], labels[rows])
        if present.size == 2:  # scikit-learn keeps one row: the score of the second class
            weight[present[1]] = model.coef_[0]
            bias[present[0]] = 0.0
            bias[present[1]] = model.intercept_[0]
        else:
            weight[present] = model.coef_
            bias[present] = model.intercept_
        return weight, bias

    @staticmethod
    def _scores(features, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:  # noqa: ANN001 - scipy sparse
        return _log_softmax(np.asarray(features @ weight.T) + bias)

    def base(self) -> np.ndarray:
        """Log-probabilities of the samples."""
        return self._base

    def edited(self, rows: np.ndarray, samples: np.ndarray) -> np.ndarray:
        """Log-probabilities of edited rows."""
        del samples
        return self._scores(_presence(rows, self.vocab_size), self.weight, self.bias)


class ModelJudge:
    """The trained classifier itself: ``module(token_ids)`` logits, in batches, in inference mode."""

    def __init__(self, module: nn.Module, x: np.ndarray, *, device: torch.device, batch_size: int) -> None:
        self.module = module.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self._base = self._predict(x)

    def _predict(self, rows: np.ndarray) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, rows.shape[0], self.batch_size):
                batch = torch.as_tensor(rows[start : start + self.batch_size], device=self.device)
                out.append(torch.log_softmax(self.module(batch).double(), dim=1).cpu().numpy())
        return np.concatenate(out)

    def base(self) -> np.ndarray:
        """The model's log-probabilities of the samples."""
        return self._base

    def edited(self, rows: np.ndarray, samples: np.ndarray) -> np.ndarray:
        """The model's log-probabilities of edited rows."""
        del samples
        return self._predict(rows)


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    top = np.max(np.where(np.isfinite(scores), scores, -np.inf), axis=1, keepdims=True)
    shifted = scores - top
    return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


class _Stop(Exception):  # noqa: N818 - an internal signal, turned into DetectionCancelled by the caller
    """Cancellation seen while fitting the fold models."""
