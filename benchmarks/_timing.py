"""Shared timing helpers: pinned threads, warm-up, interleaved repeats, median and min, the environment."""

from __future__ import annotations

import datetime as dt
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import torch

__all__ = ["Timing", "environment", "interleaved", "load_average", "pin_threads", "ratio"]

#: Distributions whose versions shape the figures.
LIBRARIES = (
    "torch",
    "numpy",
    "scikit-learn",
    "adversarial-robustness-toolbox",
    "torchattacks",
    "modelscan",
    "skops",
    "safetensors",
    "joblib",
)


@dataclass
class Timing:
    """Wall-clock seconds of one case over its repeats (warm-up runs excluded)."""

    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median of the repeats."""
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        """Fastest repeat."""
        return min(self.samples)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"median_s": self.median, "min_s": self.min, "repeats": len(self.samples), "samples_s": self.samples}


def pin_threads(threads: int) -> int:
    """Pin torch's intra-op (and, if still possible, inter-op) thread pools; returns the threads in use."""
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # only settable before the first parallel op; the intra-op pool is what matters here
        pass
    return torch.get_num_threads()


def interleaved(cases: Mapping[str, Callable[[], Any]], *, repeats: int, warmup: int = 1) -> dict[str, Timing]:
    """Time each case ``repeats`` times, round-robin (A B C A B C ...), so background load hits all alike.

    Every case first runs ``warmup`` times untimed (allocator, autograd and import warm-up). The garbage
    collector runs before, and is paused during, each timed call.
    """
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    timings = {name: Timing(name) for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            gc.collect()
            gc.disable()
            try:
                started = time.perf_counter()
                fn()
                timings[name].samples.append(time.perf_counter() - started)
            finally:
                gc.enable()
    return timings


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, infinite when the denominator is zero."""
    return numerator / denominator if denominator > 0 else float("inf")


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages, where the OS reports them."""
    try:
        return os.getloadavg()
    except OSError:
        return None


def environment(threads: int) -> dict[str, Any]:
    """The machine, thread count, library versions and date a run was made on."""
    versions = {"python": platform.python_version()}
    for dist in LIBRARIES:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "load_average": load_average(),
        "versions": versions,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
