"""The ``poisoning_detection`` and ``backdoor_simulation`` kinds.

``poisoning_detection`` reads the run's model's penultimate features on the dataset's train split and runs
spectral signatures and/or activation clustering over them; on text (token ids) it runs the token-level
trigger detector instead (each candidate word or phrase removed, the model asked again), and each flagged
class names its suspected trigger phrases. Plain datasets carry no ground truth, so only
the flags are reported; an uploaded ``.npz`` holding a ``poison_indices`` array (row numbers of the file)
is a red-team set with known poison, and then precision and recall are reported too.

``backdoor_simulation`` is the red-team exercise end to end: poison the train split with a trigger, train
the model's architecture on it, detect the poison, drop what was flagged, retrain and re-measure.
"""

from __future__ import annotations

import json
import time
from typing import Any

from evaluations.runners.base import (
    DataSpec,
    ProducedFile,
    RunContext,
    RunOutcome,
    _device,
    _head,
    load_classifier,
    load_dataset_split,
)

SPLIT_SEED = 0
"""Uploads are split 75/25 with this seed, as robustness runs split them, so 'the train split' is one set."""

MAX_IDS_IN_METRICS = 100
"""Flagged sample ids are copied into the metrics only up to this many; the file always has all of them."""


def _detection_config(config: dict[str, Any]) -> Any:
    from evaluations.engine.poisoning import DetectionConfig

    return DetectionConfig(method=config["method"], images=config.get("images", "input_space"))


def known_poison(spec: DataSpec, n_train: int) -> Any:
    """Positions of known poison in the (first ``n_train`` samples of the) train split, or None.

    Only an uploaded ``.npz`` with a ``poison_indices`` array carries them; the split is recomputed exactly
    as :func:`evaluations.engine.datasets.stratified_split` makes it (scikit-learn's ``train_test_split``).
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    if spec.kind != "npz" or spec.path is None:
        return None
    with np.load(spec.path, allow_pickle=False) as archive:
        if "poison_indices" not in archive.files:
            return None
        poison = np.asarray(archive["poison_indices"]).reshape(-1)
        labels = np.asarray(archive["y"]).reshape(-1)
    from evaluations.engine.common import EngineInputError

    if poison.size and (poison.dtype.kind not in "iu" or poison.min() < 0 or poison.max() >= labels.size):
        raise EngineInputError(
            f"poison_indices must be row numbers of the file in [0, {labels.size}); save them as integers."
        )
    train_rows, _ = train_test_split(np.arange(labels.size), test_size=0.25, stratify=labels, random_state=SPLIT_SEED)
    is_poison = np.isin(train_rows[:n_train], poison)
    return np.flatnonzero(is_poison)


def _class_rows(result: Any, class_names: list[str]) -> list[dict[str, Any]]:
    """One row per class: the verdict, the counts and the two detectors' headline statistics."""
    rows = []
    for decision in result.classes:
        stats = decision.statistics or {}
        spectral = stats.get("spectral_signatures", stats if "separation" in stats else {})
        clustering = stats.get("activation_clustering", stats if "silhouette" in stats else {})
        rows.append(
            {
                "label": decision.label,
                "name": class_names[decision.label] if decision.label < len(class_names) else str(decision.label),
                "n_samples": decision.n_samples,
                "flagged": decision.flagged,
                "n_flagged": decision.n_flagged,
                "separation": (spectral or {}).get("separation"),
                "silhouette": (clustering or {}).get("silhouette"),
                "trigger_phrases": stats.get("trigger_phrases"),
                "trigger_z": stats.get("max_z"),
                "trigger_transfer": stats.get("best_transfer"),
                "reason": decision.reason,
            }
        )
    return rows


def _detection_metrics(result: Any, class_names: list[str]) -> dict[str, Any]:
    ids = [int(i) if isinstance(i, int) else i for i in result.flagged_ids]
    metrics: dict[str, Any] = {
        "method": result.method,
        "n_samples": result.n_samples,
        "flagged": int(result.flagged_indices.size),
        "flagged_fraction": result.flagged_indices.size / result.n_samples if result.n_samples else 0.0,
        "flagged_classes": result.flagged_classes,
        "classes": _class_rows(result, class_names),
        "class_names": class_names,
        "feature_layer": result.feature_layer,
    }
    if len(ids) <= MAX_IDS_IN_METRICS:
        metrics["flagged_ids"] = ids
    if result.metrics is not None:
        metrics.update(
            precision=result.metrics.precision,
            recall=result.metrics.recall,
            f1=result.metrics.f1,
            true_positives=result.metrics.true_positives,
            false_positives=result.metrics.false_positives,
            false_negatives=result.metrics.false_negatives,
        )
    return metrics


def run_poisoning_detection(ctx: RunContext) -> RunOutcome:
    """Flag suspicious training samples of the dataset's train split using the run's model's features."""
    from evaluations.engine.poisoning import detect_poison_in_model

    started = time.perf_counter()
    config = ctx.config
    assert ctx.dataset is not None
    ctx.progress(0.0, "loading model and data")
    classifier = load_classifier(ctx.model, device=_device(config))
    train, _ = load_dataset_split(
        ctx.dataset, bounds=ctx.model.bounds, class_names=ctx.model.class_names, seed=SPLIT_SEED
    )
    train = _head(train, config["max_samples"])
    poison = known_poison(ctx.dataset, len(train))
    result = detect_poison_in_model(
        classifier,
        train,
        _detection_config(config),
        layer=config["layer"] or None,
        seed=config["seed"],
        device=_device(config),
        poison_indices=poison,
        batch_size=config["batch_size"],
        progress=lambda f: ctx.progress(0.05 + 0.95 * f, "detecting poison"),
        should_cancel=ctx.should_cancel,
    )
    ctx.progress(1.0, "done")
    class_names = list(train.class_names)
    metrics = _detection_metrics(result, class_names)
    metrics["known_poison"] = None if poison is None else int(poison.size)
    report = result.to_dict()
    flagged = {
        "flagged_ids": report["flagged_ids"],
        "labels": [int(train.y[i]) for i in result.flagged_indices.tolist()],
        "scores": [float(result.scores[i]) for i in result.flagged_indices.tolist()],
        "class_names": class_names,
        "split": {"part": "train", "seed": SPLIT_SEED, "first_n": len(train)},
    }
    if train.texts is not None:  # text data: the reviewer reads the flagged messages, not token ids
        flagged["texts"] = [train.texts[i] for i in result.flagged_indices.tolist()]
    flags = [
        {
            "code": "poison_suspected",
            "message": f"Class {row['name']}: {row['n_flagged']} sample(s) flagged ({row['reason']}).",
            "details": row,
        }
        for row in metrics["classes"]
        if row["flagged"]
    ]
    reproducibility = {
        "seed": config["seed"],
        "model_sha256": ctx.model.sha256,
        "dataset_sha256": ctx.dataset.sha256,
        "data_sha256": result.data_sha256,
        "features_sha256": result.features_sha256,
        "detection_config": result.config,
        "library_versions": result.library_versions,
    }
    return RunOutcome(
        metrics=metrics,
        flags=flags,
        reliable=None,
        reproducibility=reproducibility,
        files=[
            ProducedFile("flagged_samples", "flagged-samples.json", "application/json", json.dumps(flagged).encode()),
            ProducedFile("report", "poisoning-detection-report.json", "application/json", json.dumps(report).encode()),
        ],
        engine_seconds=time.perf_counter() - started,
    )


# --- backdoor simulation ------------------------------------------------------------------------------


def _trigger(config: dict[str, Any], train: Any) -> Any:
    from evaluations.engine.common import EngineInputError
    from evaluations.engine.poisoning import PatchTrigger, TokenTrigger

    if config["trigger"] == "patch":
        return PatchTrigger(size=config["patch_size"], location=config["patch_location"])
    if train.vocabulary is None:
        raise EngineInputError("A token trigger needs a text dataset with a vocabulary; use 'patch' for images.")
    return TokenTrigger.from_phrase(config["trigger_phrase"], train.vocabulary)


def _recipe(ctx: RunContext) -> Any:
    from evaluations.engine.common import EngineInputError
    from evaluations.engine.defenses import TrainingConfig
    from evaluations.engine.poisoning import TrainingRecipe

    if not ctx.model.architecture:
        raise EngineInputError(
            "A backdoor simulation retrains the model's architecture from scratch; register the model as "
            "safetensors with a built-in architecture (small_cnn, mlp, text_embeddingbag, ...)."
        )
    config = ctx.config
    hyperparams = dict(ctx.model.hyperparams)
    hyperparams.setdefault("num_classes", len(ctx.model.class_names))
    training = TrainingConfig(epochs=config["epochs"], batch_size=config["batch_size"], lr=config["lr"])
    return TrainingRecipe(architecture=ctx.model.architecture, hyperparams=hyperparams, training=training)


def run_backdoor_simulation(ctx: RunContext) -> RunOutcome:
    """Poison, train, detect, drop the flagged samples, retrain: the backdoor's success before and after."""
    from evaluations.engine.common import check_cancelled
    from evaluations.engine.poisoning import BackdoorConfig, detect_poison_in_model, remediate, simulate_backdoor

    started = time.perf_counter()
    config = ctx.config
    assert ctx.dataset is not None
    ctx.progress(0.0, "loading data")
    train, test = load_dataset_split(
        ctx.dataset, bounds=ctx.model.bounds, class_names=ctx.model.class_names, seed=SPLIT_SEED
    )
    train = _head(train, config["max_train_samples"])
    test = _head(test, config["max_test_samples"])
    recipe = _recipe(ctx)
    backdoor = BackdoorConfig(
        trigger=_trigger(config, train),
        target_class=config["target_class"],
        source_classes=tuple(config["source_classes"]) if config["source_classes"] else None,
        poison_rate=config["poison_rate"],
        rate_of=config["rate_of"],
    )
    seed, device = config["seed"], _device(config)
    simulation = simulate_backdoor(
        train,
        test,
        backdoor,
        recipe,
        seed=seed,
        device=device,
        clean_baseline=config["clean_baseline"],
        progress=lambda f: ctx.progress(0.02 + 0.43 * f, "training on poisoned data"),
        should_cancel=ctx.should_cancel,
    )
    check_cancelled(ctx.should_cancel)
    poisoned = simulation.poisoned.dataset
    detection = detect_poison_in_model(
        simulation.module,
        poisoned,
        _detection_config(config),
        seed=seed,
        device=device,
        poison_indices=simulation.poison_indices,
        progress=lambda f: ctx.progress(0.45 + 0.1 * f, "detecting poison"),
        should_cancel=ctx.should_cancel,
    )
    remediation = remediate(
        poisoned,
        test,
        detection.flagged_indices,
        backdoor,
        recipe,
        action="drop",
        seed=seed,
        device=device,
        model=simulation.module,
        reference_clean_accuracy=simulation.baseline.clean_accuracy if simulation.baseline else None,
        progress=lambda f: ctx.progress(0.55 + 0.45 * f, "retraining without the flagged samples"),
        should_cancel=ctx.should_cancel,
    )
    ctx.progress(1.0, "done")
    class_names = list(train.class_names)
    assert detection.metrics is not None  # the poison is known here
    metrics: dict[str, Any] = {
        "trigger": backdoor.trigger.to_dict(),
        "target_class": backdoor.target_class,
        "target_class_name": class_names[backdoor.target_class],
        "source_classes": list(backdoor.sources(len(class_names))),
        "poison_rate": backdoor.poison_rate,
        "n_poison": simulation.poisoned.n_poison,
        "n_train": len(poisoned),
        "n_test": simulation.metrics.n_test,
        "attack_success_rate": simulation.attack_success_rate,
        "clean_accuracy": simulation.clean_accuracy,
        "baseline_clean_accuracy": simulation.baseline.clean_accuracy if simulation.baseline else None,
        "baseline_attack_success_rate": simulation.baseline.attack_success_rate if simulation.baseline else None,
        "method": detection.method,
        "flagged": int(detection.flagged_indices.size),
        "precision": detection.metrics.precision,
        "recall": detection.metrics.recall,
        "f1": detection.metrics.f1,
        "classes": _class_rows(detection, class_names),
        "class_names": class_names,
        "remediation": remediation.action,
        "backdoor_success_after": remediation.after.attack_success_rate,
        "clean_accuracy_after": remediation.after.clean_accuracy,
        "history": [record.to_dict() for record in simulation.history],
    }
    report = {
        "simulation": simulation.to_dict(),
        "detection": detection.to_dict(),
        "remediation": remediation.to_dict(),
    }
    flags = []
    if (remediation.after.attack_success_rate or 0.0) > 0.5:
        flags.append(
            {
                "code": "backdoor_survives_remediation",
                "message": f"After dropping the flagged samples the trigger still works on "
                f"{remediation.after.attack_success_rate:.0%} of source-class inputs.",
            }
        )
    reproducibility = {
        "seed": seed,
        "model_sha256": ctx.model.sha256,
        "dataset_sha256": ctx.dataset.sha256,
        "train_sha256": simulation.poisoned.clean_sha256,
        "poisoned_train_sha256": poisoned.sha256,
        "test_sha256": simulation.test_sha256,
        "backdoored_model_sha256": simulation.model_sha256,
        "remediated_model_sha256": remediation.model_sha256_after,
        "backdoor_config": backdoor.to_dict(),
        "recipe": recipe.to_dict(),
        "detection_config": detection.config,
        "library_versions": simulation.library_versions,
    }
    poison_file = {
        "poison_indices": simulation.poison_indices.tolist(),
        "flagged_indices": detection.flagged_indices.tolist(),
        "class_names": class_names,
    }
    return RunOutcome(
        metrics=metrics,
        flags=flags,
        reliable=None,
        reproducibility=reproducibility,
        files=[
            ProducedFile(
                "flagged_samples", "flagged-samples.json", "application/json", json.dumps(poison_file).encode()
            ),
            ProducedFile("report", "backdoor-simulation-report.json", "application/json", json.dumps(report).encode()),
        ],
        engine_seconds=time.perf_counter() - started,
    )
