"""Black-box access to a victim model: an in-process classifier or an HTTP prediction endpoint.

An extraction attacker sees the victim only through :meth:`Victim.query`, which takes a batch
``(N, *input_shape)`` and returns a :class:`VictimAnswer`: the predicted labels, and the probabilities
or the top-k classes when the victim reveals them. Every victim counts the inputs it was asked about
(one input is one query) and can enforce a query budget. :class:`LocalVictim` wraps a
:class:`~evaluations.engine.models.Classifier`; :class:`~.http_victim.HttpVictim` a remote endpoint
speaking the schema below.

HTTP prediction schema (implemented by Garrison's guarded serving API)
-----------------------------------------------------------------------

Request: ``POST <url>`` with headers ``Content-Type: application/json`` and, when a key is set,
``Authorization: Bearer <key>``; body::

    {"inputs": [<input>, ...]}

where each ``<input>`` is one sample as nested JSON lists of the model's input shape without the
batch dimension (``(1, 8, 8)`` is a list of one list of eight lists of eight numbers); float inputs
lie within the model's bounds, text models take integer token ids.

Response: ``200`` with a JSON body holding one prediction per input, in order::

    {"predictions": [
        {"label": 3,
         "probabilities": [p_0, ..., p_{C-1}] | null,
         "top_k": [[label, probability], ...] | null},
        ...
    ]}

``label`` is the predicted class in ``[0, C)``. The output policy decides what else is revealed:
``probabilities`` (all ``C`` class probabilities, each in ``[0, 1]``), ``top_k`` (the ``k``
most likely classes with their probabilities, most likely first), or neither (label only). Within
one response every prediction reveals the same fields. Errors: ``429`` (rate limited, with an
optional ``Retry-After`` header in seconds), ``401``/``403`` (bad key), ``400``/``413`` (bad or too
large request), ``5xx`` (server fault).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from evaluations.engine.common import EngineInputError, InvalidConfigError, ShapeMismatchError
from evaluations.engine.extraction.defenses import OutputDefense
from evaluations.engine.models.classifier import Classifier

__all__ = [
    "OUTPUTS",
    "LocalVictim",
    "QueryBudgetExhaustedError",
    "Victim",
    "VictimAnswer",
    "VictimError",
    "VictimRateLimitedError",
    "VictimResponseError",
    "VictimUnavailableError",
]

Output = Literal["probabilities", "top_k", "label"]
OUTPUTS: tuple[str, ...] = ("probabilities", "top_k", "label")


# --- errors ---------------------------------------------------------------------------------------


class VictimError(EngineInputError):
    """Querying the victim failed; the message says what to fix."""


class QueryBudgetExhaustedError(VictimError):
    """The victim's query budget does not cover the requested inputs."""


class VictimUnavailableError(VictimError):
    """The victim did not answer: timeout, refused connection, server error or rate limit."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class VictimRateLimitedError(VictimUnavailableError):
    """The endpoint answered 429 Too Many Requests; ``retry_after`` is its Retry-After in seconds, if given."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class VictimResponseError(VictimError):
    """The victim answered, but not with a valid prediction (garbage, wrong schema, refused request)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# --- answers --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class VictimAnswer:
    """What the victim revealed about a batch of ``N`` inputs.

    Attributes:
        labels: predicted classes, int64 ``(N,)``.
        probabilities: float64 ``(N, C)`` when the victim reveals all class probabilities, else None.
        top_k_labels: int64 ``(N, k)``, most likely first, when the victim reveals its top k, else None.
        top_k_probabilities: float64 ``(N, k)`` matching ``top_k_labels``, else None.
    """

    labels: np.ndarray
    probabilities: np.ndarray | None = None
    top_k_labels: np.ndarray | None = None
    top_k_probabilities: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def output(self) -> Output:
        """The richest kind of output revealed: ``'probabilities'``, ``'top_k'`` or ``'label'``."""
        if self.probabilities is not None:
            return "probabilities"
        if self.top_k_labels is not None:
            return "top_k"
        return "label"

    def soft_targets(self, num_classes: int) -> np.ndarray:
        """Training targets ``(N, C)`` for a surrogate: the probabilities when revealed; with top-k the
        revealed mass on those classes and the remainder spread evenly over the others; else one-hot."""
        n = len(self)
        if self.probabilities is not None:
            targets = np.clip(self.probabilities, 0.0, None)
        elif self.top_k_labels is not None and self.top_k_probabilities is not None:
            k = self.top_k_labels.shape[1]
            revealed = np.clip(self.top_k_probabilities, 0.0, None)
            rest = np.clip(1.0 - revealed.sum(axis=1, keepdims=True), 0.0, None) / max(num_classes - k, 1)
            targets = np.repeat(rest, num_classes, axis=1)
            np.put_along_axis(targets, self.top_k_labels, revealed, axis=1)
        else:
            targets = np.zeros((n, num_classes))
            targets[np.arange(n), self.labels] = 1.0
        totals = targets.sum(axis=1, keepdims=True)
        empty = totals[:, 0] <= 0
        if empty.any():  # e.g. all-zero rounded rows: fall back to the label
            targets[empty] = 0.0
            targets[np.flatnonzero(empty), self.labels[empty]] = 1.0
            totals = targets.sum(axis=1, keepdims=True)
        return targets / totals

    @staticmethod
    def concatenate(answers: list[VictimAnswer]) -> VictimAnswer:
        """One answer for the stacked batches (all must reveal the same kind of output)."""
        if len(answers) == 1:
            return answers[0]

        def stack(name: str) -> np.ndarray | None:
            parts = [getattr(answer, name) for answer in answers]
            if all(part is None for part in parts):
                return None
            if any(part is None for part in parts):
                raise VictimResponseError(
                    "The victim revealed different kinds of output for different batches; it must use one "
                    "output policy for the whole run."
                )
            return np.concatenate(parts)

        return VictimAnswer(
            labels=np.concatenate([answer.labels for answer in answers]),
            probabilities=stack("probabilities"),
            top_k_labels=stack("top_k_labels"),
            top_k_probabilities=stack("top_k_probabilities"),
        )


def answer_from_probabilities(probabilities: np.ndarray, output: Output, k: int) -> VictimAnswer:
    """The answer revealing ``output`` for probability vectors ``(N, C)``; labels are their argmax."""
    labels = probabilities.argmax(axis=1).astype(np.int64)
    if output == "probabilities":
        return VictimAnswer(labels=labels, probabilities=probabilities)
    if output == "top_k":
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        return VictimAnswer(
            labels=labels,
            top_k_labels=order.astype(np.int64),
            top_k_probabilities=np.take_along_axis(probabilities, order, axis=1),
        )
    return VictimAnswer(labels=labels)


# --- the interface --------------------------------------------------------------------------------


class Victim(abc.ABC):
    """A model the attacker can only query: ``query(x)`` for a batch ``(N, *input_shape)``.

    ``queries_used`` counts inputs answered so far; with ``max_queries`` set, a query that would pass
    it raises :class:`QueryBudgetExhaustedError` before anything is sent.
    """

    def __init__(
        self,
        *,
        input_shape: tuple[int, ...],
        num_classes: int,
        bounds: tuple[float, float],
        max_queries: int | None = None,
        input_dtype: torch.dtype = torch.float32,
    ) -> None:
        input_shape = tuple(int(d) for d in input_shape)
        if not input_shape or any(d <= 0 for d in input_shape):
            raise InvalidConfigError(
                f"input_shape must be positive sizes without the batch dimension; got {input_shape}."
            )
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise InvalidConfigError(f"num_classes must be an integer >= 2; got {num_classes!r}.")
        lo, hi = (float(b) for b in bounds)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise InvalidConfigError(f"bounds must be finite with lo < hi, e.g. (0.0, 1.0); got {bounds}.")
        if max_queries is not None and (
            isinstance(max_queries, bool) or not isinstance(max_queries, int) or max_queries < 0
        ):
            raise InvalidConfigError(f"max_queries must be None (unlimited) or an integer >= 0; got {max_queries!r}.")
        self.input_shape = input_shape
        self.num_classes = num_classes
        self.bounds = (lo, hi)
        self.max_queries = max_queries
        self.input_dtype = input_dtype
        self.queries_used = 0
        self.requests_made = 0

    @property
    def remaining(self) -> int | None:
        """Queries left under ``max_queries`` (None when unlimited)."""
        return None if self.max_queries is None else self.max_queries - self.queries_used

    def query(self, x: Tensor | np.ndarray) -> VictimAnswer:
        """The victim's answer for a batch ``x`` of shape ``(N, *input_shape)``; counts ``N`` queries."""
        x = torch.as_tensor(x).detach().cpu()
        if x.dim() != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise ShapeMismatchError(
                f"The victim takes inputs of shape (N, {', '.join(map(str, self.input_shape))}) but got "
                f"{tuple(x.shape)}; reshape the queries or declare the victim's input_shape."
            )
        n = int(x.shape[0])
        if n == 0:
            raise EngineInputError("Query at least one input; got an empty batch.")
        remaining = self.remaining
        if remaining is not None and n > remaining:
            raise QueryBudgetExhaustedError(
                f"The victim's query budget allows {remaining} more of {self.max_queries} queries but {n} were "
                "requested; raise max_queries or query fewer inputs."
            )
        answer = self._answer(x.to(self.input_dtype))
        if len(answer) != n:
            raise VictimResponseError(f"The victim answered {len(answer)} predictions for {n} inputs.")
        return answer

    def count(self, n: int) -> None:
        """Record ``n`` answered queries (called by implementations once the victim has answered)."""
        self.queries_used += n
        self.requests_made += 1

    @abc.abstractmethod
    def _answer(self, x: Tensor) -> VictimAnswer:
        """Answer a validated CPU batch and record the queries with :meth:`count`."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-ready description for results (never secrets)."""


class LocalVictim(Victim):
    """An in-process :class:`Classifier` behind an output defense and an output policy.

    Probabilities are ``softmax(classifier.logits(x))``; ``defense`` (any callable mapping a batch of
    probability vectors to one of the same shape, see :mod:`.defenses`) is applied to them, then the
    victim reveals ``output``: all probabilities, the top ``k``, or the label only. Labels are the argmax
    of the defended probabilities.
    """

    def __init__(
        self,
        classifier: Classifier,
        *,
        output: Output = "probabilities",
        k: int = 3,
        defense: OutputDefense | None = None,
        max_queries: int | None = None,
        batch_size: int = 512,
    ) -> None:
        super().__init__(
            input_shape=classifier.input_shape,
            num_classes=classifier.num_classes,
            bounds=classifier.bounds,
            max_queries=max_queries,
            input_dtype=getattr(classifier, "input_dtype", torch.float32),
        )
        _check_output(output, k, classifier.num_classes)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidConfigError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
        self.classifier = classifier
        self.output = output
        self.k = k
        self.defense = defense
        self.batch_size = batch_size

    def probabilities(self, x: Tensor) -> np.ndarray:
        """Undefended class probabilities ``(N, C)`` (float64); does not count queries."""
        parts = []
        with torch.inference_mode():
            for start in range(0, x.shape[0], self.batch_size):
                batch = x[start : start + self.batch_size].to(self.classifier.device)
                parts.append(torch.softmax(self.classifier.logits(batch).double(), dim=1).cpu().numpy())
        return np.concatenate(parts)

    def _answer(self, x: Tensor) -> VictimAnswer:
        probabilities = self.probabilities(x)
        if self.defense is not None:
            probabilities = np.asarray(self.defense(probabilities), dtype=np.float64)
        self.count(int(x.shape[0]))
        return answer_from_probabilities(probabilities, self.output, self.k)

    def describe(self) -> dict[str, Any]:
        """Kind, output policy, defense and model hash."""
        return {
            "kind": "local",
            "output": self.output,
            "k": self.k if self.output == "top_k" else None,
            "defense": None if self.defense is None else _describe_defense(self.defense),
            "model_sha256": self.classifier.sha256,
            "framework": self.classifier.framework,
        }


# --- helpers --------------------------------------------------------------------------------------


def _check_output(output: str, k: int, num_classes: int) -> None:
    if output not in OUTPUTS:
        raise InvalidConfigError(f"output must be one of {', '.join(OUTPUTS)}; got {output!r}.")
    if output == "top_k" and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= num_classes):
        raise InvalidConfigError(f"k must be an integer in [1, {num_classes}]; got {k!r}.")


def _describe_defense(defense: OutputDefense) -> dict[str, Any]:
    to_dict = getattr(defense, "to_dict", None)
    return to_dict() if callable(to_dict) else {"name": getattr(defense, "__name__", type(defense).__name__)}
