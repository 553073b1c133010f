"""Loading a deployment's model once per process (scan-first engine loaders) and answering a batch.

Only the serving routes import this module's functions' dependencies: torch is imported inside them.
"""

from __future__ import annotations

import gc
import threading
from typing import Any

from evaluations.models import ModelArtifact

_MODELS: dict[tuple[int, str], Any] = {}
#: The engine victim answering for each (model, output policy), made once: a policy's defense is validated when
#: it is made, which need not happen on every request.
_VICTIMS: dict[tuple[Any, ...], Any] = {}
_MAX_VICTIMS = 64
_LOCK = threading.Lock()


def classifier_for(artifact: ModelArtifact) -> Any:
    """The artifact's classifier, loaded once per process (keyed by artifact id and blob SHA-256)."""
    key = (artifact.pk, artifact.blob_id)
    found = _MODELS.get(key)
    if found is not None:
        return found
    with _LOCK:
        found = _MODELS.get(key)
        if found is None:
            from evaluations.runners.base import ModelSpec, load_classifier

            spec = ModelSpec(
                path=artifact.blob.path,
                format=artifact.format,
                architecture=artifact.architecture,
                hyperparams=dict(artifact.hyperparams),
                input_shape=list(artifact.input_shape),
                bounds=list(artifact.input_bounds),
                class_names=list(artifact.class_names),
                sha256=artifact.sha256,
            )
            found = load_classifier(spec)
            _set_threads()
            _MODELS[key] = found
            from django.conf import settings

            if settings.GARRISON_SERVING_FREEZE_HEAP:
                _freeze_heap()
    return found


def _freeze_heap() -> None:
    """Take everything alive now (Django, torch, the model) out of the cyclic garbage collector's full passes.

    A serving process holds hundreds of thousands of long-lived objects once torch and a model are loaded; every
    full collection walks them all (about 100 ms here, every few seconds under load: a stall for every queued
    request). ``gc.freeze()`` moves them to the permanent generation (reference counting still frees them); the
    collection just before it leaves no garbage behind in it. Done once per model load.
    """
    gc.collect()
    gc.freeze()


def _set_threads() -> None:
    """Small batches run fastest on one thread per web process (several processes share the cores)."""
    from django.conf import settings

    threads = settings.GARRISON_SERVING_TORCH_THREADS
    if threads > 0:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def forget_models() -> None:
    """Drop the cached models (tests, or after an artifact's file changed)."""
    with _LOCK:
        _MODELS.clear()
        _VICTIMS.clear()


def victim_for(artifact: ModelArtifact, policy: dict[str, Any]) -> Any:
    """The engine's :class:`LocalVictim` answering as a deployment of ``artifact`` with ``policy`` does (made once
    per process and policy)."""
    key = (artifact.pk, artifact.blob_id, *sorted(policy.items()))
    found = _VICTIMS.get(key)
    if found is None:
        from evaluations.serving.policies import local_victim

        found = local_victim(classifier_for(artifact), policy)
        with _LOCK:
            if len(_VICTIMS) >= _MAX_VICTIMS:  # policies edited many times over: start again
                _VICTIMS.clear()
            _VICTIMS[key] = found
    return found


def predict(artifact: ModelArtifact, x: Any, policy: dict[str, Any]) -> tuple[Any, Any]:
    """``(answer, model probabilities (N, C))`` for a validated float64 batch ``x``.

    The answer is what the engine's :class:`LocalVictim` with the policy's output and defense reveals
    (the same code path: undefended probabilities, the defense, then the output). The undefended
    probabilities are returned for the monitor: the server sees its model's real confidence, whatever
    the policy hides or perturbs (reverse sigmoid, for one, makes every answer look uncertain).
    """
    import numpy as np
    import torch

    from evaluations.engine.extraction.victim import answer_from_probabilities

    victim = victim_for(artifact, policy)
    batch = torch.from_numpy(x).to(victim.input_dtype)
    probabilities = victim.probabilities(batch)
    defended = probabilities if victim.defense is None else np.asarray(victim.defense(probabilities), dtype=np.float64)
    return answer_from_probabilities(defended, victim.output, victim.k), probabilities
