"""ART's extraction attacks and postprocessors on the same victims, with fidelity measured the engine's way.

ART (adversarial-robustness-toolbox 1.20) returns a stolen classifier but no fidelity, so we measure
it: top-1 agreement of the stolen classifier with the victim's answers on the same held-out inputs the
engine uses. The victim is ART's ``PyTorchClassifier`` around the victim module followed by a softmax
(ART's postprocessors act on probabilities), with one postprocessor; the thief is the engine's surrogate
architecture with the same seed, Adam learning rate and training steps as the engine's surrogate.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks._extraction import Workload
from evaluations.engine.extraction import LocalVictim, OutputDefense
from evaluations.engine.extraction.attacks import ExtractionConfig
from evaluations.engine.extraction.strategies import _uniform

__all__ = [
    "ART_POSTPROCESSORS",
    "art_extract",
    "art_victim",
    "class_labels_accuracy",
    "knockoff_adaptive",
    "reference_labels",
]


def _postprocessors() -> dict[str, Callable[[], Any] | None]:
    from art.defences.postprocessor import ClassLabels, GaussianNoise, ReverseSigmoid, Rounded

    return {
        "none": None,
        "label_only": ClassLabels,
        "rounding": lambda: Rounded(decimals=2),
        "reverse_sigmoid": lambda: ReverseSigmoid(beta=0.7, gamma=1.2),
        "gaussian_noise": lambda: GaussianNoise(scale=0.05),
    }


#: Engine defense name -> ART postprocessor (ART has no top-k postprocessor).
ART_POSTPROCESSORS = ("none", "label_only", "rounding", "reverse_sigmoid", "gaussian_noise")


def art_victim(workload: Workload, defense: str) -> Any:
    """ART's classifier around the victim (probabilities out) with the postprocessor standing for ``defense``."""
    from art.estimators.classification import PyTorchClassifier

    logging.getLogger("art").setLevel(logging.ERROR)
    factory = _postprocessors()[defense]
    clf = workload.classifier
    return PyTorchClassifier(
        model=nn.Sequential(clf.module, nn.Softmax(dim=1)),
        loss=nn.CrossEntropyLoss(),
        input_shape=clf.input_shape,
        nb_classes=clf.num_classes,
        clip_values=clf.bounds,
        postprocessing_defences=[factory()] if factory else None,
        device_type="cpu",
    )


def _thief(workload: Workload, seed: int) -> Any:
    from art.estimators.classification import PyTorchClassifier

    from evaluations.engine.extraction._surrogate import build_surrogate

    clf = workload.classifier
    module = build_surrogate(
        workload.surrogate, workload.surrogate_hyperparams, clf.input_shape, clf.num_classes, seed
    ).train()
    return PyTorchClassifier(
        model=module,
        loss=nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(module.parameters(), lr=ExtractionConfig().lr),
        input_shape=clf.input_shape,
        nb_classes=clf.num_classes,
        clip_values=clf.bounds,
        device_type="cpu",
    )


def _epochs(budget: int) -> int:
    """The engine's surrogate training length (``max(epochs * batches, min_steps)``) in ART's epochs."""
    config = ExtractionConfig()
    per_epoch = math.ceil(budget / config.batch_size)
    return max(config.epochs, math.ceil(config.min_steps / per_epoch))


def _fidelity(stolen: Any, workload: Workload, reference: np.ndarray) -> float:
    predicted = stolen.predict(np.asarray(workload.x_eval, dtype=np.float32), batch_size=512).argmax(axis=1)
    return float((predicted == reference).mean())


def reference_labels(workload: Workload, defense: OutputDefense | None) -> np.ndarray:
    """The labels fidelity is measured against: the (defended) victim's answers, as the engine does."""
    return LocalVictim(workload.classifier, defense=defense).query(workload.x_eval).labels


def art_extract(
    attack: str, workload: Workload, defense: str, budget: int, reference: np.ndarray, *, seed: int
) -> dict[str, Any]:
    """ART ``CopycatCNN`` on uniform random inputs (``attack='copycat_random'``) or ``KnockoffNets`` with random
    sampling from the natural pool (``'knockoff_random'``): fidelity of the stolen classifier, or the error."""
    from art.attacks.extraction import CopycatCNN, KnockoffNets

    started = time.perf_counter()
    np.random.seed(seed)  # ART samples with numpy's global generator
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _art_extract(attack, workload, defense, budget, reference, seed, CopycatCNN, KnockoffNets)
    out["warnings"] = sorted({f"{w.category.__name__}: {str(w.message)[:80]}" for w in caught})
    out["seconds"] = time.perf_counter() - started
    return out


def _art_extract(
    attack: str,
    workload: Workload,
    defense: str,
    budget: int,
    reference: np.ndarray,
    seed: int,
    copycat: Any,
    knockoff: Any,
) -> dict[str, Any]:
    try:
        thief = _thief(workload, seed)
        victim = art_victim(workload, defense)
        common = {"batch_size_fit": ExtractionConfig().batch_size, "batch_size_query": 256, "nb_stolen": budget}
        if attack == "copycat_random":
            generator = torch.Generator().manual_seed(seed)
            context = _Domain(workload)
            x = np.asarray(_uniform(budget, context, generator), dtype=np.float32)
            stolen = copycat(victim, nb_epochs=_epochs(budget), **common).extract(x, thieved_classifier=thief)
        else:
            pool = np.asarray(workload.pool, dtype=np.float32)
            stolen = knockoff(victim, nb_epochs=_epochs(budget), verbose=False, **common).extract(
                pool, thieved_classifier=thief
            )
            budget = min(budget, pool.shape[0])  # ART queries each pool input at most once
        return {"fidelity": _fidelity(stolen, workload, reference), "queries": budget}
    except Exception as exc:  # noqa: BLE001 - we report what ART does, including its failures
        return {"error": f"{type(exc).__name__}: {str(exc)[:160]}"}


def knockoff_adaptive(workload: Workload, defense: str, budget: int, reference: np.ndarray, *, seed: int) -> dict:
    """ART ``KnockoffNets(sampling_strategy='adaptive', reward='all')`` on the natural pool (its true labels as the
    bandit's actions): fidelity, or the error it raised, and whether its rewards went non-finite."""
    from art.attacks.extraction import KnockoffNets

    started = time.perf_counter()
    np.random.seed(seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            thief = _thief(workload, seed)
            attack = KnockoffNets(
                art_victim(workload, defense),
                batch_size_fit=ExtractionConfig().batch_size,
                batch_size_query=1,
                nb_epochs=_epochs(budget),
                nb_stolen=budget,
                sampling_strategy="adaptive",
                reward="all",
                verbose=False,
            )
            stolen = attack.extract(
                np.asarray(workload.pool, dtype=np.float32), workload.pool_y, thieved_classifier=thief
            )
            out: dict[str, Any] = {"fidelity": _fidelity(stolen, workload, reference)}
            out["nonfinite_rewards"] = not bool(np.isfinite(attack.reward_avg).all())
        except Exception as exc:  # noqa: BLE001
            out = {"error": f"{type(exc).__name__}: {str(exc)[:160]}"}
    out["warnings"] = sorted({f"{w.category.__name__}: {str(w.message)[:80]}" for w in caught})
    out["seconds"] = time.perf_counter() - started
    return out


def class_labels_accuracy(workload: Workload) -> dict[str, float]:
    """The victim's own accuracy behind ART's ``ClassLabels``: one ``predict`` call on the whole held-out set
    (ART applies postprocessors once per call, whatever its ``batch_size``), and one call per input."""
    victim = art_victim(workload, "label_only")
    plain = art_victim(workload, "none")
    x = np.asarray(workload.x_eval, dtype=np.float32)
    y = np.asarray(workload.y_eval)
    batched = victim.predict(x, batch_size=128)
    single = np.concatenate([victim.predict(x[i : i + 1]) for i in range(x.shape[0])])
    return {
        "undefended": float((plain.predict(x, batch_size=128).argmax(axis=1) == y).mean()),
        "batched": float((batched.argmax(axis=1) == y).mean()),
        "batched_ones_per_row": float(batched.sum(axis=1).mean()),
        "one_call_per_input": float((single.argmax(axis=1) == y).mean()),
    }


class _Domain:
    """The input domain as the engine's uniform sampler wants it."""

    def __init__(self, workload: Workload) -> None:
        clf = workload.classifier
        self.input_shape = clf.input_shape
        self.bounds = clf.bounds
        self.input_dtype = clf.input_dtype
