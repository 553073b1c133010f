"""Backdoor poison detection on digits (patch) and SMS spam (trigger phrase), beside ART's defaults; remediation;
the data-ingestion scan. ``python -m benchmarks --only poisoning`` (refreshes its section of docs/benchmarks.md)."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from benchmarks._poison import SMS_PHRASE, Workload, art_detect, score, workload
from benchmarks._poison_ingestion import BATCH_SIZE, scan_batch
from benchmarks._report import Bar, BenchResult, fmt_pct, table
from evaluations.engine.poisoning import detect_poison_in_model, remediate, simulate_backdoor

NAME = "poisoning"
SEEDS = (0, 1, 2)
RATES = {"digits": (0.05, 0.10, 0.33), "sms": (0.01, 0.03, 0.10)}
INGESTION_RATES = (0.03, 0.10)
RECALL_BAR, PRECISION_BAR = 0.95, 0.8
ASR_BAR, CLEAN_DROP_BAR = 0.05, 0.01
CLEAN_FLAGGED_BAR = 0.05


def _art(module: Any, data: Any, poison: np.ndarray, *, text: bool) -> dict[str, Any]:
    """ART's spectral signatures and activation clustering (defaults) on the same model and data."""
    out: dict[str, Any] = {}
    for method in ("spectral", "clustering"):
        try:
            flagged = art_detect(module, data, method, cast_tokens=False)
            out[method] = score(flagged, poison, data.y)
        except Exception as exc:  # noqa: BLE001 - a peer's failure is a finding, reported in the table
            if not text:
                out[method] = {"error": f"{type(exc).__name__}: {exc}"[:160]}
                continue
            # ART copies token ids to float32 and the embedding layer refuses them; rerun with a cast-back.
            flagged = art_detect(module, data, method, cast_tokens=True)
            out[method] = {**score(flagged, poison, data.y), "native_error": f"{type(exc).__name__}"}
    return out


def _cell(w: Workload, rate: float, seed: int, clean: dict[str, Any]) -> dict[str, Any]:
    """Poison at ``rate`` with ``seed``, train, detect (Garrison and ART), remediate."""
    sim = simulate_backdoor(w.train, w.test, w.backdoor(rate), w.recipe, seed=seed)
    data, poison = sim.poisoned.dataset, sim.poison_indices
    started = time.perf_counter()
    detection = detect_poison_in_model(sim.module, data, seed=seed, poison_indices=poison)
    seconds = time.perf_counter() - started
    fixed = remediate(
        data,
        w.test,
        detection.flagged_indices,
        w.backdoor(rate),
        w.recipe,
        seed=seed,
        model=sim.module,
        reference_clean_accuracy=clean["accuracy"],
    )
    return {
        "rate": rate,
        "seed": seed,
        "n_poison": int(poison.size),
        "garrison": {**score(detection.flagged_indices, poison, data.y), "seconds": seconds},
        "garrison_classes": detection.flagged_classes,
        "triggers": [p for c in detection.classes for p in c.statistics.get("trigger_phrases", [])][:3],
        "art": _art(sim.module, data, poison, text=w.name == "sms"),
        "asr_before": sim.attack_success_rate,
        "asr_after": fixed.after.attack_success_rate,
        "flip_before": w.flip_rate(sim.module, seed=seed),
        "flip_after": w.flip_rate(fixed.module, seed=seed),
        "accuracy_before": sim.clean_accuracy,
        "accuracy_after": fixed.after.clean_accuracy,
    }


def _clean_cell(w: Workload, seed: int) -> dict[str, Any]:
    """The 0% case: the recipe on clean data; which classes each detector flags."""
    module, _ = w.recipe.fit(*w.train.as_tensors(), seed=seed)
    metrics = w.clean_metrics(module, seed=seed)
    detection = detect_poison_in_model(module, w.train, seed=seed)
    art: dict[str, Any] = {}
    for method in ("spectral", "clustering"):
        try:
            flagged = art_detect(module, w.train, method, cast_tokens=w.name == "sms")
            art[method] = {"flagged": int(flagged.size), "classes": sorted(set(w.train.y[flagged].tolist()))}
        except Exception as exc:  # noqa: BLE001 - reported
            art[method] = {"error": f"{type(exc).__name__}: {exc}"[:160]}
    return {
        "seed": seed,
        "accuracy": metrics.clean_accuracy,
        "trigger_success": metrics.attack_success_rate,
        "trigger_flip": w.flip_rate(module, seed=seed),
        "garrison_classes": detection.flagged_classes,
        "garrison_flagged": int(detection.flagged_indices.size),
        "art": art,
    }


def _prf(cell: dict[str, Any]) -> str:
    if "error" in cell:
        return "fails"
    return f"{cell['precision']:.2f} / {cell['recall']:.2f} / {cell['f1']:.2f}"


def _detection_table(name: str, clean: list[dict[str, Any]], cells: list[dict[str, Any]]) -> str:
    def art_clean(entry: dict[str, Any]) -> str:
        return "fails" if "error" in entry else f"{entry['flagged']} flagged, classes {entry['classes']}"

    rows = [
        [
            "0%",
            c["seed"],
            0,
            f"**{c['garrison_flagged']} flagged, classes {c['garrison_classes']}**",
            art_clean(c["art"]["spectral"]),
            art_clean(c["art"]["clustering"]),
        ]
        for c in clean
    ]
    rows += [
        [
            f"{c['rate']:.0%}",
            c["seed"],
            c["n_poison"],
            f"**{_prf(c['garrison'])}**",
            _prf(c["art"]["spectral"]),
            _prf(c["art"]["clustering"]),
        ]
        for c in cells
    ]
    header = [
        f"{name}: poison (% of target class)",
        "Seed",
        "Poisoned",
        "Garrison P / R / F1",
        "ART spectral P / R / F1",
        "ART clustering P / R / F1",
    ]
    return table(header, rows)


def _remediation_table(report: dict[str, Any]) -> str:
    rows = []
    for name, data in report.items():
        clean = {c["seed"]: c for c in data["clean"]}
        for rate in RATES[name]:
            cells = [c for c in data["cells"] if c["rate"] == rate]
            drops = [clean[c["seed"]]["accuracy"] - c["accuracy_after"] for c in cells]
            rows.append(
                [
                    f"{name} {rate:.0%}",
                    f"{fmt_pct(statistics.mean(c['asr_before'] for c in cells))} / "
                    f"{fmt_pct(statistics.mean(c['flip_before'] for c in cells))}",
                    f"**{fmt_pct(max(c['asr_after'] for c in cells))} / "
                    f"{fmt_pct(max(c['flip_after'] for c in cells))}**",
                    f"{fmt_pct(max(clean[c['seed']]['trigger_success'] for c in cells))} / "
                    f"{fmt_pct(max(clean[c['seed']]['trigger_flip'] for c in cells))}",
                    fmt_pct(statistics.mean(clean[c["seed"]]["accuracy"] for c in cells)),
                    fmt_pct(statistics.mean(c["accuracy_after"] for c in cells)),
                    f"**{100 * max(drops):+.2f} pts**",
                ]
            )
    return table(
        [
            "Cell (3 seeds)",
            "Backdoor success before: all / flipped (mean)",
            "After dropping Garrison's flags: all / flipped (worst seed)",
            "Clean model: all / flipped (worst seed)",
            "Clean model accuracy",
            "Accuracy after",
            "Worst accuracy drop vs clean",
        ],
        rows,
    )


def run(*, quick: bool = False) -> BenchResult:
    """All cells; ``quick`` runs seed 0 only."""
    seeds = SEEDS[:1] if quick else SEEDS
    report: dict[str, Any] = {}
    for name in ("digits", "sms"):
        w = workload(name)
        clean = [_clean_cell(w, seed) for seed in seeds]
        by_seed = {c["seed"]: c for c in clean}
        cells = [_cell(w, rate, seed, by_seed[seed]) for rate in RATES[name] for seed in seeds]
        report[name] = {"clean": clean, "cells": cells}
    ingestion = [scan_batch(rate, seed) for rate in INGESTION_RATES for seed in seeds]

    result = BenchResult(name=NAME, title="Poison detection: digits patch backdoor and SMS trigger phrase, beside ART")
    result.tables.append(_detection_table("digits", report["digits"]["clean"], report["digits"]["cells"]))
    result.tables.append(_detection_table("SMS", report["sms"]["clean"], report["sms"]["cells"]))
    result.tables.append(_remediation_table(report))
    result.tables.append(
        table(
            [
                f"Ingestion: batch of {BATCH_SIZE} + 80% base",
                "Seed",
                "Scanned",
                "Poisoned",
                "Recall",
                "Clean batch records flagged",
                "Base records flagged",
                "Seconds per scan",
                "Named trigger",
            ],
            [
                [
                    f"{r['rate']:.0%} poisoned",
                    r["seed"],
                    r["n_scanned"],
                    r["n_poison"],
                    f"{r['recall']:.3f}",
                    fmt_pct(r["clean_batch_flagged"]),
                    r["base_flagged"],
                    f"{r['seconds']:.2f}",
                    ", ".join(r["triggers"][:1]),
                ]
                for r in ingestion
            ],
        )
    )
    misses = [
        f"{name} {c['rate']:.0%} seed {c['seed']} (P {c['garrison']['precision']:.2f}, R {c['garrison']['recall']:.2f})"
        for name, data in report.items()
        for c in data["cells"]
        if c["garrison"]["recall"] < RECALL_BAR or c["garrison"]["precision"] < PRECISION_BAR
    ]
    cells_total = sum(len(d["cells"]) for d in report.values())
    false_alarms = [
        f"{name} seed {c['seed']}: {c['garrison_classes']}"
        for name, data in report.items()
        for c in data["clean"]
        if c["garrison_classes"]
    ]
    clean_by = {name: {c["seed"]: c for c in data["clean"]} for name, data in report.items()}
    remediation_misses = [
        f"{name} {c['rate']:.0%} seed {c['seed']} (flipped {c['flip_after']:.4f}, clean model "
        f"{clean_by[name][c['seed']]['trigger_flip']:.4f}; "
        f"accuracy after minus clean {100 * (c['accuracy_after'] - clean_by[name][c['seed']]['accuracy']):+.2f} pts)"
        for name, data in report.items()
        for c in data["cells"]
        if c["flip_after"] > ASR_BAR or clean_by[name][c["seed"]]["accuracy"] - c["accuracy_after"] > CLEAN_DROP_BAR
    ]
    ingestion_misses = [
        f"{r['rate']:.0%} seed {r['seed']}"
        for r in ingestion
        if r["recall"] < RECALL_BAR or r["clean_batch_flagged"] > CLEAN_FLAGGED_BAR
    ]
    result.bars += [
        Bar(
            f"Garrison recall >= {RECALL_BAR} and precision >= {PRECISION_BAR} in every cell",
            not misses,
            f"{cells_total - len(misses)} of {cells_total} cells"
            + (f"; missed: {'; '.join(misses)}" if misses else ""),
        ),
        Bar(
            "0% poison: no class flagged",
            not false_alarms,
            "no class flagged on any seed" if not false_alarms else "; ".join(false_alarms),
        ),
        Bar(
            f"remediation: backdoor success (flipped) <= {ASR_BAR} and clean accuracy within "
            f"{CLEAN_DROP_BAR * 100:.0f} point of the clean model",
            not remediation_misses,
            f"{cells_total - len(remediation_misses)} of {cells_total} cells"
            + (f"; missed: {'; '.join(remediation_misses)}" if remediation_misses else ""),
        ),
        Bar(
            f"ingestion: recall >= {RECALL_BAR}, <= {CLEAN_FLAGGED_BAR:.0%} of clean batch records flagged",
            not ingestion_misses,
            f"{len(ingestion) - len(ingestion_misses)} of {len(ingestion)} scans"
            + (f"; missed: {'; '.join(ingestion_misses)}" if ingestion_misses else ""),
        ),
    ]
    sms_native = {c["art"]["spectral"].get("native_error") for c in report["sms"]["cells"]} - {None}
    result.notes += [
        "Garrison: `detect_poison_in_model` with its defaults: on digits (float images) the input-space "
        "patch-trigger detector (`evaluations/engine/poisoning/input_space.py`: per window, the class-t samples "
        "that leave t when the window is filled with the median image give a candidate trigger; it is confirmed "
        "when pasting it sends >= 80% of the source class to t, >= 5 samples carry it and leave t without it, they "
        "are at least half of t's samples carrying it, and most of them look like another class with the window "
        "ignored: Neural Cleanse's small-trigger test per (source, target) pair + exclusionary reclassification); "
        "on SMS "
        "(token ids) the token-trigger detector (`evaluations/engine/poisoning/text_triggers.py`, the trained "
        "model as judge). The ingestion scan is `detect_text_poison` on raw texts with no model (a "
        "bag-of-words logistic-regression judge).",
        "ART 1.20.1 `SpectralSignatureDefense` and `ActivationDefence` with their defaults (`detect_poison()`, "
        "`expected_pp_poison=0.33`, 2-means on 10 PCA dims, 'smaller' cluster analysis) around a "
        "`PyTorchClassifier` of the same module, on the same poisoned training set; ART reads its activations "
        "from the last layer (the logits) as it does by default.",
        (
            f"On SMS ART fails natively ({', '.join(sorted(sms_native))}: it copies the int64 token ids to float32 and "
            "`nn.EmbeddingBag` refuses float indices); its figures here are with a thin wrapper that casts the "
            "inputs back to int64 (same weights, same outputs)."
            if sms_native
            else "On SMS ART ran on the token ids without help."
        ),
        f"SMS trigger: the phrase '{SMS_PHRASE}' appended to spam messages relabelled ham (`TokenTrigger`, "
        "position 'end'); digits trigger: a 2x2 white patch in the bottom-right corner, class 0 -> 1. Poisoned "
        "copies are appended; the rate is the poisoned share of the target class. Remediation drops Garrison's "
        "flagged samples and retrains the same recipe with the same seed; 'clean' is that recipe and seed on "
        "the unpoisoned split.",
        "Backdoor success 'all' is the engine's attack success rate (triggered source-class test inputs classified "
        "as the target); 'flipped' counts only the source inputs the model gets right without the trigger. The "
        "spam filter lets about 15% of spam through with or without the phrase, so 'all' cannot fall below that "
        "on SMS; the remediation bar is checked on 'flipped'. Even the model trained on clean data has a small "
        "'flipped' rate on SMS (two extra words tip a few borderline spam messages into ham): when every poison "
        "is flagged, dropping the flags leaves exactly the clean split, so the remediated model is the clean "
        "model and its figures are the clean model's.",
        "The feature-space detectors (spectral signatures + activation clustering over penultimate features, "
        "`DetectionConfig(images='features')`) are no longer the digits default: with 7 poisoned copies in a "
        "class of 134 the poison does not form a separate cluster in two seeds' models, and on one seed a "
        "natural sub-cluster of about a fifth of the 9s is well separated and lies nearer another class, so "
        "activation clustering flagged it at 0% and at 33% (the previous run of this table: 5% recall 0.00 on "
        "seeds 1 and 2, 27 clean 9s flagged at 0%, precision 0.72 at 33%).",
    ]
    result.data = {"report": report, "ingestion": ingestion}
    return result
