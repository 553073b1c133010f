"""What every runner shares: the run's view of the database (specs, context), its outcome, and loading.

Pure glue without Django or an engine import at module level (see :mod:`evaluations.runners`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Progress = Callable[[float, str], None]
"""Called with (fraction done in [0, 1], stage label)."""


@dataclass(frozen=True)
class ModelSpec:
    """What the runner needs to load a registered model version."""

    path: Path
    format: str
    architecture: str
    hyperparams: dict[str, Any]
    input_shape: list[int]
    bounds: list[float]
    class_names: list[str]
    sha256: str


@dataclass(frozen=True)
class DataSpec:
    """What the runner needs to load a registered dataset."""

    kind: str
    reference_name: str = ""
    path: Path | None = None
    label_column: str = ""
    sha256: str = ""


@dataclass
class RunContext:
    """Everything one run (or shard) needs, without the database."""

    kind: str
    config: dict[str, Any]
    model: ModelSpec
    dataset: DataSpec | None
    progress: Progress = lambda fraction, stage: None  # noqa: E731
    should_cancel: Callable[[], bool] = lambda: False  # noqa: E731


@dataclass(frozen=True)
class ProducedFile:
    """A file the run produced."""

    kind: str  # a RunArtifactKind value
    name: str
    content_type: str
    data: bytes


@dataclass
class RunOutcome:
    """What a finished run records."""

    metrics: dict[str, Any]
    flags: list[dict[str, Any]] = field(default_factory=list)
    reliable: bool | None = None
    reproducibility: dict[str, Any] = field(default_factory=dict)
    files: list[ProducedFile] = field(default_factory=list)
    hardened_model: dict[str, Any] | None = None  # {"data": bytes, "architecture", "hyperparams", ...}
    engine_seconds: float = 0.0


# --- loading --------------------------------------------------------------------------------------


def load_classifier(spec: ModelSpec, *, device: str = "cpu") -> Any:
    """Load the model through the engine's scan-first loaders."""
    from evaluations.engine.models import load_model

    options: dict[str, Any] = {
        "input_shape": tuple(spec.input_shape),
        "bounds": (float(spec.bounds[0]), float(spec.bounds[1])),
        "num_classes": len(spec.class_names),
    }
    if spec.format == "safetensors":
        options.update(architecture=spec.architecture, hyperparams=dict(spec.hyperparams), device=device)
    elif spec.format == "torchscript":
        options.update(device=device)
    return load_model(spec.path, format=spec.format, **options)


def load_dataset_split(spec: DataSpec, *, bounds: list[float] | None, class_names: list[str], seed: int = 0) -> Any:
    """A (train, test) split of the dataset: reference splits as shipped, uploads split 75/25 stratified."""
    from evaluations.engine.datasets import (
        load_npz,
        load_reference,
        load_tabular_csv,
        load_text_csv,
        stratified_split,
    )

    if spec.kind == "reference":
        return load_reference(spec.reference_name, seed=0)
    assert spec.path is not None
    box = (float(bounds[0]), float(bounds[1])) if bounds else None
    if spec.kind == "npz":
        data = load_npz(spec.path, bounds=box)
    elif spec.kind == "csv":
        data = load_tabular_csv(spec.path, label_column=spec.label_column, bounds=box)
    else:
        data = load_text_csv(spec.path, delimiter="\t")
    return stratified_split(data, test_size=0.25, seed=seed)


def profile_dataset(spec: DataSpec) -> dict[str, Any]:
    """Schema and class balance of a dataset, read by the engine loaders (which validate it)."""
    import numpy as np

    train, test = load_dataset_split(spec, bounds=None, class_names=[])
    counts = np.bincount(np.concatenate([train.y, test.y]), minlength=len(train.class_names))
    return {
        "schema": {
            "input_shape": list(train.input_shape),
            "dtype": str(train.x.dtype),
            "bounds": list(train.bounds),
            "class_names": list(train.class_names),
            "n_train": len(train.y),
            "n_test": len(test.y),
            "source": train.source,
            "data_sha256": train.sha256,
        },
        "class_balance": {name: int(counts[i]) for i, name in enumerate(train.class_names)},
    }


def _device(config: dict[str, Any]) -> str:
    return str(config.get("device") or "cpu")


def _head(dataset: Any, n: int) -> Any:
    """The first ``n`` samples of an engine dataset (keeping its dtype, vocabulary and provenance)."""
    if len(dataset.y) <= n:
        return dataset
    return dataset.subset(range(n), first_n=n)
