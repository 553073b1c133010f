"""Adversarial training on digits with DIGITS_CONFIG: robust and clean accuracy before and after, wall time."""

from __future__ import annotations

import dataclasses
import time

from benchmarks._digits import ARCHITECTURE, HYPERPARAMS, SEED, digits
from benchmarks._report import Bar, BenchResult, fmt_pct, table
from evaluations.engine.defenses import DIGITS_CONFIG, adversarial_training

NAME = "adversarial_training"
ROBUST_GAIN_BAR = 0.30
CLEAN_DROP_BAR = 0.03


def run(*, quick: bool = False) -> BenchResult:
    """Harden the plainly trained digits CNN with the engine's documented defaults (engine only)."""
    d = digits()
    # --quick trains 10 epochs instead of 40; the evaluation attack (PGD-50, 5 restarts) is unchanged.
    config = dataclasses.replace(DIGITS_CONFIG, epochs=10) if quick else DIGITS_CONFIG
    started = time.perf_counter()
    res = adversarial_training(
        d.classifier, d.train, d.test, config, architecture=ARCHITECTURE, hyperparams=HYPERPARAMS, seed=SEED
    )
    wall = time.perf_counter() - started
    gain = res.robust_accuracy_after - res.robust_accuracy_before
    drop = res.clean_accuracy_before - res.clean_accuracy_after
    attack = config.evaluation_attack

    result = BenchResult(
        name=NAME,
        title=f"Adversarial training, digits, `DIGITS_CONFIG`{' (--quick: 10 epochs)' if quick else ''}",
    )
    result.tables.append(
        table(
            [
                "Model (540 test digits)",
                "Clean accuracy",
                f"Robust accuracy (PGD-{attack.steps}, {attack.restarts} restarts, eps {config.eps:g})",
            ],
            [
                [
                    "small_cnn, plain training (Adam 0.01, 10 epochs)",
                    fmt_pct(res.clean_accuracy_before),
                    fmt_pct(res.robust_accuracy_before),
                ],
                [
                    f"small_cnn, PGD-{config.steps} adversarial training ({config.epochs} epochs)",
                    fmt_pct(res.clean_accuracy_after),
                    fmt_pct(res.robust_accuracy_after),
                ],
                ["Change", f"{-100 * drop:+.1f} pts", f"{100 * gain:+.1f} pts"],
            ],
        )
    )
    result.tables.append(
        table(
            ["Wall time", "Seconds"],
            [
                ["training", f"{res.train_seconds:.1f}"],
                ["total (both evaluations with sanity checks, and training)", f"{res.total_seconds:.1f}"],
                ["call, end to end", f"{wall:.1f}"],
            ],
        )
    )
    result.bars += [
        Bar(
            f"robust accuracy rises >= {100 * ROBUST_GAIN_BAR:.0f} pts",
            gain >= ROBUST_GAIN_BAR,
            f"{100 * gain:+.1f} pts ({fmt_pct(res.robust_accuracy_before)} -> {fmt_pct(res.robust_accuracy_after)})",
        ),
        Bar(
            f"clean accuracy drops <= {100 * CLEAN_DROP_BAR:.0f} pts",
            drop <= CLEAN_DROP_BAR,
            f"{-100 * drop:+.1f} pts ({fmt_pct(res.clean_accuracy_before)} -> {fmt_pct(res.clean_accuracy_after)})",
        ),
    ]
    flags = [f.to_dict() if hasattr(f, "to_dict") else str(f) for f in (*res.before.flags, *res.after.flags)]
    if flags:
        result.notes.append(f"Sanity flags raised: {flags}")
    result.data = {
        "clean_before": res.clean_accuracy_before,
        "clean_after": res.clean_accuracy_after,
        "robust_before": res.robust_accuracy_before,
        "robust_after": res.robust_accuracy_after,
        "train_seconds": res.train_seconds,
        "total_seconds": res.total_seconds,
        "config": config.to_dict(),
        "sanity_flags": flags,
    }
    return result
