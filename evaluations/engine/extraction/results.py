"""Result dataclasses of an extraction run; ``to_dict()`` gives JSON-serialisable dicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from evaluations.engine.common import Cancelled

__all__ = ["BudgetPoint", "ExtractionCancelled", "ExtractionResult", "TransferResult"]


@dataclass(frozen=True)
class BudgetPoint:
    """Surrogate quality after ``queries`` attack queries (``budget`` is the planned checkpoint)."""

    budget: int
    queries: int
    fidelity: float
    accuracy: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class TransferResult:
    """Adversarial examples crafted on the final surrogate, replayed against the victim.

    ``success_rate`` is over ``n_samples`` held-out inputs the victim classified correctly: the fraction
    whose victim label the adversarial example changed. ``surrogate_success_rate`` is the same on the
    surrogate itself (white-box), for comparison.
    """

    attack: str
    eps: float
    steps: int | None
    n_samples: int
    success_rate: float | None
    surrogate_success_rate: float | None
    queries: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True, eq=False)
class ExtractionResult:
    """The fidelity-vs-budget curve of one attacker, with everything needed to reproduce and audit it.

    ``complete`` is False when the run stopped before the last budget (``stopped_reason`` says why:
    cancelled, pool used up, victim budget exhausted). ``queries_used`` counts attack queries;
    ``evaluation_queries`` the victim answers on held-out data and transfer examples.
    """

    strategy: dict[str, Any]
    config: dict[str, Any]
    curve: list[BudgetPoint]
    queries_used: int
    evaluation_queries: int
    victim: dict[str, Any]
    victim_output: str
    soft_labels_used: bool
    victim_accuracy: float
    transfer: TransferResult | None
    complete: bool
    stopped_reason: str | None
    n_eval: int
    seed: int
    device: str
    eval_sha256: str
    pool_sha256: str | None
    queries_sha256: str | None
    library_versions: dict[str, str]
    seconds: float

    @property
    def fidelity(self) -> float | None:
        """Fidelity at the largest budget reached (None before the first budget)."""
        return self.curve[-1].fidelity if self.curve else None

    @property
    def accuracy(self) -> float | None:
        """Surrogate accuracy at the largest budget reached."""
        return self.curve[-1].accuracy if self.curve else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "strategy": dict(self.strategy),
            "config": dict(self.config),
            "curve": [point.to_dict() for point in self.curve],
            "budgets": [point.budget for point in self.curve],
            "fidelities": [point.fidelity for point in self.curve],
            "fidelity": self.fidelity,
            "accuracy": self.accuracy,
            "queries_used": self.queries_used,
            "evaluation_queries": self.evaluation_queries,
            "victim": dict(self.victim),
            "victim_output": self.victim_output,
            "soft_labels_used": self.soft_labels_used,
            "victim_accuracy": self.victim_accuracy,
            "transfer": None if self.transfer is None else self.transfer.to_dict(),
            "complete": self.complete,
            "stopped_reason": self.stopped_reason,
            "n_eval": self.n_eval,
            "seed": self.seed,
            "device": self.device,
            "eval_sha256": self.eval_sha256,
            "pool_sha256": self.pool_sha256,
            "queries_sha256": self.queries_sha256,
            "library_versions": dict(self.library_versions),
            "seconds": self.seconds,
        }


class ExtractionCancelled(Cancelled):  # noqa: N818 - a Cancelled, read as a state
    """The run was cancelled; ``partial`` holds the result so far (the curve up to the last budget reached)."""

    def __init__(self, message: str, *, partial: ExtractionResult) -> None:
        super().__init__(message)
        self.partial = partial
