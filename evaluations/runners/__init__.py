"""Adapters from a run kind to the engine: load the model and data, call the engine, shape the results.

Pure glue: no Django models or ORM here (the executor builds a :class:`RunContext` from the database and
stores the :class:`RunOutcome`), and no engine import at module level, so the web process can import this
module (to know which kinds are available) without loading torch. Shared pieces live in
:mod:`.base`; the extraction and poisoning kinds in :mod:`.extraction` and :mod:`.poisoning`.

Robustness runs are computed in *units* of ``shard_size`` consecutive samples, each with its own seed
derived from the run seed and the unit's index. A sharded run hands groups of units to parallel tasks and
:func:`robustness_merge` combines the unit results in unit order, the same code path an unsharded run
takes, so a sharded run's metrics equal the unsharded run's exactly.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluations.runners.base import (
    DataSpec,
    ModelSpec,
    ProducedFile,
    Progress,
    RunContext,
    RunOutcome,
    _device,
    _head,
    load_classifier,
    load_dataset_split,
    profile_dataset,
)
from evaluations.runners.extraction import run_extraction
from evaluations.runners.poisoning import run_backdoor_simulation, run_poisoning_detection

__all__ = [
    "DataSpec",
    "ModelSpec",
    "ProducedFile",
    "Progress",
    "RunContext",
    "RunOutcome",
    "load_classifier",
    "load_dataset_split",
    "profile_dataset",
    "run",
    "run_adversarial_training",
    "run_backdoor_simulation",
    "run_extraction",
    "run_model_scan",
    "run_poisoning_detection",
    "run_robustness",
    "runner_available",
]

logger = logging.getLogger(__name__)

# --- model_scan -------------------------------------------------------------------------------------


def scan_model_file(path: Path) -> dict[str, Any]:
    """The static scan report of a model file, as JSON."""
    from evaluations.engine.scanning import scan_path

    return scan_path(path).to_dict()


def run_model_scan(ctx: RunContext) -> RunOutcome:
    """Static safety scan of the run's model file."""
    started = time.perf_counter()
    ctx.progress(0.0, "scanning")
    report = scan_model_file(ctx.model.path)
    ctx.progress(1.0, "done")
    findings = report.get("findings", [])
    metrics = {
        "verdict": report.get("verdict"),
        "format": report.get("format"),
        "findings": len(findings),
        "size_bytes": report.get("size_bytes"),
    }
    import json

    return RunOutcome(
        metrics=metrics,
        flags=[{"code": f.get("code"), "message": f.get("message"), "details": f} for f in findings],
        reliable=None,
        reproducibility={"model_sha256": ctx.model.sha256, "scanner_version": report.get("scanner_version")},
        files=[ProducedFile("report", "scan-report.json", "application/json", json.dumps(report).encode())],
        engine_seconds=time.perf_counter() - started,
    )


# --- robustness -------------------------------------------------------------------------------------


def unit_seed(seed: int, unit_index: int) -> int:
    """Independent, reproducible seed of one sample unit (whatever shard computes it)."""
    import numpy as np

    return int(np.random.SeedSequence([seed, 0x5EED, unit_index]).generate_state(1)[0])


def unit_ranges(n: int, shard_size: int) -> list[tuple[int, int]]:
    """Consecutive ``[start, stop)`` sample ranges of ``shard_size`` (the last may be shorter)."""
    return [(start, min(start + shard_size, n)) for start in range(0, n, shard_size)]


def shard_units(n_units: int, shards: int) -> list[list[int]]:
    """Split unit indices into ``shards`` contiguous, nearly equal groups (empty groups dropped)."""
    shards = max(1, min(shards, n_units))
    base, extra = divmod(n_units, shards)
    groups, start = [], 0
    for index in range(shards):
        size = base + (1 if index < extra else 0)
        groups.append(list(range(start, start + size)))
        start += size
    return [group for group in groups if group]


def _attack_template(config: dict[str, Any]) -> Any:
    from evaluations.engine.robustness import FGSMConfig, PGDConfig

    attack = config["attack"]
    if attack == "fgsm":
        return FGSMConfig(eps=1.0)
    if attack == "pgd":
        return PGDConfig(eps=1.0, steps=config["steps"], norm=config["norm"], restarts=config["restarts"])
    if attack == "apgd":
        from evaluations.engine.robustness.apgd import APGDConfig

        return APGDConfig(eps=1.0, steps=config["steps"], norm=config["norm"], restarts=config["restarts"])
    if attack == "text":
        from evaluations.engine.robustness.text import TextAttackConfig

        return TextAttackConfig(max_edits=1)
    from evaluations.engine.robustness.square import SquareConfig

    return SquareConfig(eps=1.0, n_queries=config["n_queries"])


@dataclass
class RobustnessInputs:
    """The loaded model and the evaluated samples of a robustness run."""

    classifier: Any
    x: Any
    y: Any
    class_names: list[str]
    data_sha256: str
    vocabulary: Any = None  # for token-id (text) data: decodes kept samples into words


def robustness_inputs(ctx: RunContext) -> RobustnessInputs:
    """Load the model and the first ``max_samples`` samples of the chosen split."""
    assert ctx.dataset is not None
    classifier = load_classifier(ctx.model, device=_device(ctx.config))
    split = load_dataset_split(ctx.dataset, bounds=ctx.model.bounds, class_names=ctx.model.class_names)
    data = split.test if ctx.config["split"] == "test" else split.train
    n = min(len(data.y), ctx.config["max_samples"])
    import numpy as np

    from evaluations.engine.common import sha256_arrays

    x, y = np.array(data.x[:n]), np.array(data.y[:n])  # writable copies for torch
    vocabulary = getattr(data, "vocabulary", None)
    return RobustnessInputs(classifier, x, y, list(data.class_names), sha256_arrays(x, y), vocabulary)


def robustness_units(
    ctx: RunContext, inputs: RobustnessInputs, units: list[int], *, progress_span: tuple[float, float] = (0.0, 1.0)
) -> list[dict[str, Any]]:
    """Run the sweep on each listed unit; returns their JSON results (sample indices made global)."""
    import numpy as np

    from evaluations.engine.robustness import robustness_sweep

    config = ctx.config
    ranges = unit_ranges(len(inputs.y), config["shard_size"])
    low, high = progress_span
    template = _attack_template(config)
    results = []
    for position, unit in enumerate(units):
        start, stop = ranges[unit]

        def report(fraction: float, position: int = position, unit: int = unit) -> None:
            done = (position + fraction) / len(units)
            ctx.progress(low + (high - low) * done, f"attacking samples {ranges[unit][0]}-{ranges[unit][1] - 1}")

        result = robustness_sweep(
            inputs.classifier,
            inputs.x[start:stop],
            inputs.y[start:stop],
            attack=template,
            epsilons=config["epsilons"],
            batch_size=config["batch_size"],
            seed=unit_seed(config["seed"], unit),
            device=_device(config),
            progress=report,
            should_cancel=ctx.should_cancel,
            sanity=False,
        ).to_dict()
        for point in result["points"]:
            for sample in point["samples"]:
                sample["index"] += start
                if inputs.vocabulary is not None:
                    # Token ids mean nothing to a reader: keep the words (decoded in the worker, not the web).
                    sample["clean_text"] = inputs.vocabulary.decode(sample["clean"])
                    sample["adversarial_text"] = inputs.vocabulary.decode(sample["adversarial"])
        result["unit"] = unit
        result["class_counts"] = np.bincount(
            np.asarray(inputs.y[start:stop]), minlength=len(inputs.class_names)
        ).tolist()
        results.append(result)
    return results


def _weighted(values: list[float | None], weights: list[int]) -> float | None:
    if any(v is None for v in values):
        return None
    total = sum(weights)
    return sum(v * w for v, w in zip(values, weights, strict=True)) / total if total else None


def _per_class(accuracies: list[list[float | None]], counts: list[list[int]]) -> list[float | None]:
    merged = []
    for c in range(len(counts[0])):
        total = sum(unit[c] for unit in counts)
        hits = sum(round((acc[c] or 0.0) * unit[c]) for acc, unit in zip(accuracies, counts, strict=True))
        merged.append(hits / total if total else None)
    return merged


def robustness_merge(units: list[dict[str, Any]], *, keep: int = 8) -> dict[str, Any]:
    """Combine unit results (in unit order) into one curve: counts add up, means are sample-weighted."""
    units = sorted(units, key=lambda unit: unit["unit"])
    sizes = [unit["n_samples"] for unit in units]
    counts = [unit["class_counts"] for unit in units]
    n = sum(sizes)
    correct = [round(unit["clean_accuracy"] * size) for unit, size in zip(units, sizes, strict=True)]
    first = units[0]
    points = []
    for index, eps in enumerate(first["epsilons"]):
        at = [unit["points"][index] for unit in units]
        robust = sum(round(p["robust_accuracy"] * size) for p, size in zip(at, sizes, strict=True))
        fooled = sum(round((p["attack_success_rate"] or 0.0) * p["n_clean_correct"]) for p in at)
        samples = [sample for p in at for sample in p["samples"]]
        samples.sort(key=lambda s: (s["label"] != s["clean_prediction"], s["index"]))
        samples = sorted(samples[:keep], key=lambda s: s["index"])
        seconds = sum(p["seconds"] for p in at)
        points.append(
            {
                "epsilon": eps,
                "attack_config": first["points"][index]["attack_config"],
                "robust_accuracy": robust / n,
                "attack_success_rate": fooled / sum(correct) if sum(correct) else None,
                "n_clean_correct": sum(correct),
                "mean_linf": _weighted([p["mean_linf"] for p in at], sizes),
                "max_linf": max((p["max_linf"] for p in at), default=None) if at[0]["max_linf"] is not None else None,
                "mean_l2": _weighted([p["mean_l2"] for p in at], sizes),
                "max_l2": max((p["max_l2"] for p in at), default=None) if at[0]["max_l2"] is not None else None,
                "per_class_robust_accuracy": _per_class([p["per_class_robust_accuracy"] for p in at], counts),
                "samples": samples,
                "seconds": seconds,
                "samples_per_second": n / seconds if seconds > 0 else None,
                "mean_queries": _weighted([p.get("mean_queries") for p in at], sizes),
                "max_queries": max((p.get("max_queries") or 0) for p in at) if at[0].get("max_queries") else None,
                "mean_edits": None,
                "max_edits": None,
            }
        )
    total_seconds = sum(unit["timings"]["total_seconds"] for unit in units)
    return {
        "attack": first["attack"],
        "norm": first["norm"],
        "config": first["config"],
        "epsilons": first["epsilons"],
        "clean_accuracy": sum(correct) / n,
        "per_class_clean_accuracy": _per_class([unit["per_class_clean_accuracy"] for unit in units], counts),
        "points": points,
        "n_samples": n,
        "num_classes": first["num_classes"],
        "batch_size": first["batch_size"],
        "device": first["device"],
        "model_sha256": first["model_sha256"],
        "unit_data_sha256": [unit["data_sha256"] for unit in units],
        "unit_seeds": [unit["seed"] for unit in units],
        "library_versions": first["library_versions"],
        "timings": {"total_seconds": total_seconds, "clean_seconds": sum(u["timings"]["clean_seconds"] for u in units)},
    }


SANITY_LEVELS: dict[str, Callable[[], Any]] = {
    "full": lambda: _sanity_config(),
    "quick": lambda: _sanity_config(
        subset_size=32, convergence_steps=20, convergence_restarts=1, convergence_queries=300, black_box_queries=200
    ),
}


def _sanity_config(**overrides: Any) -> Any:
    from evaluations.engine.robustness.sanity import SanityConfig

    return SanityConfig(**overrides)


def robustness_sanity(ctx: RunContext, inputs: RobustnessInputs, merged: dict[str, Any]) -> dict[str, Any]:
    """Run the engine's sanity checks on the merged curve; returns {flags, checks, skipped, seconds}."""
    import numpy as np

    from evaluations.engine.robustness.results import AdversarialSample, EpsilonResult, RobustnessResult
    from evaluations.engine.robustness.sanity import sanity_report

    started = time.perf_counter()
    points = [
        EpsilonResult(
            **{key: value for key, value in point.items() if key != "samples"},
            samples=[
                AdversarialSample(
                    index=s["index"],
                    label=s["label"],
                    clean_prediction=s["clean_prediction"],
                    adversarial_prediction=s["adversarial_prediction"],
                    clean=np.asarray(s["clean"], dtype=np.float32),
                    adversarial=np.asarray(s["adversarial"], dtype=np.float32),
                )
                for s in point["samples"]
            ],
        )
        for point in merged["points"]
    ]
    result = RobustnessResult(
        attack=merged["attack"],
        norm=merged["norm"],
        config=merged["config"],
        clean_accuracy=merged["clean_accuracy"],
        per_class_clean_accuracy=merged["per_class_clean_accuracy"],
        points=points,
        n_samples=merged["n_samples"],
        num_classes=merged["num_classes"],
        batch_size=merged["batch_size"],
        seed=ctx.config["seed"],
        device=merged["device"],
        model_sha256=merged["model_sha256"],
        data_sha256=inputs.data_sha256,
        library_versions=merged["library_versions"],
        clean_seconds=merged["timings"]["clean_seconds"],
        total_seconds=merged["timings"]["total_seconds"],
        samples_per_second=0.0,
    )

    def report(fraction: float) -> None:
        ctx.progress(0.85 + 0.15 * fraction, "sanity checks")

    sanity = sanity_report(
        inputs.classifier,
        inputs.x,
        inputs.y,
        result,
        seed=ctx.config["seed"],
        device=_device(ctx.config),
        config=SANITY_LEVELS[ctx.config["sanity"]](),
        progress=report,
        should_cancel=ctx.should_cancel,
    )
    return {
        "flags": [flag.to_dict() for flag in sanity.flags],
        "checks": list(sanity.checks),
        "skipped": dict(sanity.skipped),
        "seconds": time.perf_counter() - started,
    }


def robustness_outcome(
    ctx: RunContext, inputs: RobustnessInputs, merged: dict[str, Any], *, engine_seconds: float
) -> RunOutcome:
    """Sanity-check the merged curve and shape the run's metrics, files and provenance."""
    import json

    sanity = None
    if ctx.config["sanity"] != "off":
        sanity = robustness_sanity(ctx, inputs, merged)
        engine_seconds += sanity["seconds"]
    ctx.progress(1.0, "done")
    samples = {str(point["epsilon"]): point["samples"] for point in merged["points"]}
    summary_points = [{k: v for k, v in point.items() if k != "samples"} for point in merged["points"]]
    metrics = {
        "attack": merged["attack"],
        "norm": merged["norm"],
        "epsilons": merged["epsilons"],
        "clean_accuracy": merged["clean_accuracy"],
        "robust_accuracy": [point["robust_accuracy"] for point in merged["points"]],
        "attack_success_rate": [point["attack_success_rate"] for point in merged["points"]],
        "per_class_clean_accuracy": merged["per_class_clean_accuracy"],
        "class_names": inputs.class_names,
        "n_samples": merged["n_samples"],
        "points": summary_points,
        "sanity": {"checks": sanity["checks"], "skipped": sanity["skipped"]} if sanity else None,
    }
    flags = sanity["flags"] if sanity else []
    reliable = (not flags) if sanity and sanity["checks"] else None
    from evaluations.engine.common import library_versions

    reproducibility = {
        "seed": ctx.config["seed"],
        "unit_seeds": merged["unit_seeds"],
        "shard_size": ctx.config["shard_size"],
        "model_sha256": ctx.model.sha256,
        "dataset_sha256": ctx.dataset.sha256 if ctx.dataset else "",
        "data_sha256": inputs.data_sha256,
        "attack_config": merged["config"],
        "library_versions": library_versions(),
    }
    report = {**merged, "sanity": sanity, "reproducibility": reproducibility}
    files = [
        ProducedFile("flagged_samples", "adversarial-samples.json", "application/json", json.dumps(samples).encode()),
        ProducedFile("report", "robustness-report.json", "application/json", json.dumps(report).encode()),
    ]
    return RunOutcome(
        metrics=metrics,
        flags=flags,
        reliable=reliable,
        reproducibility=reproducibility,
        files=files,
        engine_seconds=engine_seconds,
    )


def run_robustness(ctx: RunContext) -> RunOutcome:
    """The whole robustness run in this process: every unit, the merge and the sanity checks."""
    started = time.perf_counter()
    ctx.progress(0.0, "loading model and data")
    inputs = robustness_inputs(ctx)
    n_units = len(unit_ranges(len(inputs.y), ctx.config["shard_size"]))
    span = (0.0, 0.85) if ctx.config["sanity"] != "off" else (0.0, 1.0)
    units = robustness_units(ctx, inputs, list(range(n_units)), progress_span=span)
    merged = robustness_merge(units)
    return robustness_outcome(ctx, inputs, merged, engine_seconds=time.perf_counter() - started)


# --- adversarial training --------------------------------------------------------------------------


def run_adversarial_training(ctx: RunContext) -> RunOutcome:
    """Harden the model; the outcome carries the new safetensors weights to register as a new version."""
    import json

    from evaluations.engine.defenses import AdversarialTrainingConfig, adversarial_training

    started = time.perf_counter()
    config = ctx.config
    ctx.progress(0.0, "loading model and data")
    assert ctx.dataset is not None
    classifier = load_classifier(ctx.model, device=_device(config))
    train, test = load_dataset_split(
        ctx.dataset, bounds=ctx.model.bounds, class_names=ctx.model.class_names, seed=config["seed"]
    )
    train = _head(train, config["max_train_samples"])
    test = _head(test, config["max_test_samples"])
    engine_config = AdversarialTrainingConfig(
        eps=config["eps"],
        method=config["method"],
        steps=config["steps"],
        adversarial_fraction=config["adversarial_fraction"],
        init=config["init"],
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        lr=config["lr"],
        optimizer=config["optimizer"],
        lr_schedule=config["lr_schedule"],
        eval_steps=config["eval_steps"],
        eval_restarts=config["eval_restarts"],
        eval_sanity=config["eval_sanity"],
    )
    result = adversarial_training(
        classifier,
        train,
        test,
        engine_config,
        architecture=ctx.model.architecture,
        hyperparams=ctx.model.hyperparams,
        seed=config["seed"],
        device=_device(config),
        progress=lambda fraction: ctx.progress(fraction, "adversarial training"),
        should_cancel=ctx.should_cancel,
    )
    ctx.progress(1.0, "done")
    report = result.to_dict()
    metrics = {
        key: report[key]
        for key in (
            "method",
            "clean_accuracy_before",
            "robust_accuracy_before",
            "clean_accuracy_after",
            "robust_accuracy_after",
            "history",
            "n_train",
            "n_test",
            "model_sha256_after",
        )
    }
    metrics["eps"] = config["eps"]
    flags = [flag for side in ("before", "after") for flag in report[side].get("flags", [])]
    reproducibility = {
        "seed": config["seed"],
        "model_sha256": ctx.model.sha256,
        "model_sha256_after": result.model_sha256_after,
        "dataset_sha256": ctx.dataset.sha256,
        "train_data_sha256": result.train_data_sha256,
        "test_data_sha256": result.test_data_sha256,
        "library_versions": report["library_versions"],
        "engine_config": engine_config.to_dict(),
    }
    for side in ("before", "after"):
        for point in report[side]["points"]:
            point.pop("samples", None)
    return RunOutcome(
        metrics=metrics,
        flags=flags,
        reliable=None,
        reproducibility=reproducibility,
        files=[
            ProducedFile("report", "adversarial-training-report.json", "application/json", json.dumps(report).encode())
        ],
        hardened_model={
            "data": result.safetensors,
            "architecture": result.architecture,
            "hyperparams": {k: v for k, v in result.hyperparams.items() if k != "num_classes"}
            | {"num_classes": result.num_classes},
        },
        engine_seconds=time.perf_counter() - started,
    )


# --- registry ---------------------------------------------------------------------------------------

RUNNERS: dict[str, tuple[str, Callable[[RunContext], RunOutcome]]] = {
    "model_scan": ("evaluations.engine.scanning", run_model_scan),
    "robustness": ("evaluations.engine.robustness", run_robustness),
    "adversarial_training": ("evaluations.engine.defenses", run_adversarial_training),
    "extraction": ("evaluations.engine.extraction", run_extraction),
    "poisoning_detection": ("evaluations.engine.poisoning", run_poisoning_detection),
    "backdoor_simulation": ("evaluations.engine.poisoning", run_backdoor_simulation),
}
"""kind -> (engine module it needs, adapter). Kinds without an entry are refused at submit time."""


def runner_available(kind: str) -> bool:
    """True when the kind has an adapter and the engine module it calls is installed."""
    entry = RUNNERS.get(kind)
    return entry is not None and importlib.util.find_spec(entry[0]) is not None


def run(ctx: RunContext) -> RunOutcome:
    """Run ``ctx.kind`` with its adapter."""
    return RUNNERS[ctx.kind][1](ctx)
