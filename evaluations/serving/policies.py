"""Output policies as engine II victims: a deployment's policy is a :class:`LocalVictim` output and defense.

Imports the engine lazily, so the web process loads torch only on serving routes.
"""

from __future__ import annotations

from typing import Any

from evaluations.serving.models import OutputPolicy


def engine_output(policy: dict[str, Any]) -> tuple[str, int, Any]:
    """``(output, k, defense)`` for :class:`~evaluations.engine.extraction.LocalVictim` from a policy dict."""
    from evaluations.engine.extraction import GaussianNoise, ReverseSigmoid, Rounding

    name = policy["name"]
    if name == OutputPolicy.TOP_K:
        return "top_k", int(policy["k"]), None
    if name == OutputPolicy.LABEL_ONLY:
        return "label", 1, None
    if name == OutputPolicy.ROUNDING:
        return "probabilities", 1, Rounding(decimals=int(policy["decimals"]))
    if name == OutputPolicy.REVERSE_SIGMOID:
        return "probabilities", 1, ReverseSigmoid(beta=float(policy["beta"]), gamma=float(policy["gamma"]))
    if name == OutputPolicy.GAUSSIAN_NOISE:
        return "probabilities", 1, GaussianNoise(std=float(policy["std"]), seed=int(policy["seed"]))
    return "probabilities", 1, None


def local_victim(classifier: Any, policy: dict[str, Any]) -> Any:
    """The engine's in-process victim answering exactly as a deployment with ``policy`` does."""
    from evaluations.engine.extraction import LocalVictim

    output, k, defense = engine_output(policy)
    return LocalVictim(classifier, output=output, k=k, defense=defense)  # type: ignore[arg-type]


def answer_json(answer: Any) -> list[dict[str, Any]]:
    """The ``predictions`` list of the HTTP schema for an engine :class:`VictimAnswer`."""
    labels = answer.labels.tolist()
    if answer.probabilities is not None:
        rows = answer.probabilities.tolist()
        return [{"label": label, "probabilities": row, "top_k": None} for label, row in zip(labels, rows, strict=True)]
    if answer.top_k_labels is not None:
        tops = answer.top_k_labels.tolist()
        probs = answer.top_k_probabilities.tolist()
        return [
            {"label": label, "probabilities": None, "top_k": [[c, p] for c, p in zip(top, prob, strict=True)]}
            for label, top, prob in zip(labels, tops, probs, strict=True)
        ]
    return [{"label": label, "probabilities": None, "top_k": None} for label in labels]
