"""Model extraction on the digits CNN and the SMS spam filter: fidelity vs budget, defenses, ART, detection.

``run`` (benchmark ``extraction``): every attacker strategy against the victim with and without every
output defense, fidelity (top-1 agreement of the surrogate with the victim on the held-out split) at each
query budget; each defense's utility cost; ART's CopycatCNN / KnockoffNets with its postprocessors at the
same budgets, and the ART failures the issue names, as they behave here.

``run_detection`` (benchmark ``extraction_detection``): the ensemble detector (PRADA + volume + entropy +
edits, default thresholds) on each attacker's query stream and on 100 benign clients drawing from held-out data.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numpy as np
import torch

from benchmarks._extraction import (
    DEFENSES,
    SEED,
    STRATEGIES,
    Recorder,
    Workload,
    defenses_for,
    digits_workload,
    spam_workload,
)
from benchmarks._report import Bar, BenchResult, fmt_pct, table
from evaluations.engine.extraction import ExtractionConfig, LocalVictim, defense_utility, extract
from evaluations.engine.extraction.detection import DetectorConfig, QueryStream, evaluate_detector

NAME = "extraction"
BUDGETS = (50, 100, 200, 500, 1000, 2000)
QUICK_BUDGETS = (50, 200)
#: Detection: attack streams and benign streams are this long; the bar asks for detection within DETECT_BY.
STREAM_LENGTH, DETECT_BY, BENIGN_STREAMS, MAX_FPR = 300, 200, 100, 0.01
SYNTHETIC = ("random", "jacobian")

logger = logging.getLogger(__name__)


def _config(workload: Workload, budgets: tuple[int, ...], **extra: Any) -> ExtractionConfig:
    return ExtractionConfig(
        budgets=budgets,
        surrogate=workload.surrogate,
        surrogate_hyperparams=workload.surrogate_hyperparams,
        transfer_attack=None,
        **extra,
    )


def _fidelity_curves(workload: Workload, budgets: tuple[int, ...]) -> dict[tuple[str, str], dict[str, Any]]:
    """(strategy, defense) -> the engine's curve at ``budgets``."""
    config = _config(workload, budgets)
    curves = {}
    for defense_name, defense in defenses_for(workload).items():
        for strategy_name, make in STRATEGIES.items():
            strategy = make()
            started = time.perf_counter()
            result = extract(
                LocalVictim(workload.classifier, defense=defense),
                strategy,
                workload.x_eval,
                workload.y_eval,
                config,
                pool=workload.pool if strategy.needs_pool or strategy_name == "jacobian" else None,
                seed=SEED,
            )
            curves[(strategy_name, defense_name)] = {
                "fidelity": {p.budget: p.fidelity for p in result.curve},
                "accuracy": {p.budget: p.accuracy for p in result.curve},
                "soft_labels": result.soft_labels_used,
                "complete": result.complete,
                "stopped": result.stopped_reason,
                "seconds": time.perf_counter() - started,
            }
    return curves


def _utility(workload: Workload) -> dict[str, dict[str, Any]]:
    out = {}
    for name, defense in defenses_for(workload).items():
        utility = defense_utility(workload.classifier, defense or (lambda p: p), workload.x_eval, workload.y_eval)
        out[name] = {**utility.to_dict(), "keeps_top1": None if defense is None else defense.keeps_top1}
    return out


def _art(workload: Workload, budgets: tuple[int, ...], quick: bool) -> dict[str, Any]:
    """ART on this workload: fidelity per attack, postprocessor and budget; ClassLabels; adaptive KnockoffNets."""
    from benchmarks._extraction_art import (
        ART_POSTPROCESSORS,
        art_extract,
        class_labels_accuracy,
        knockoff_adaptive,
        reference_labels,
    )

    defenses = defenses_for(workload)
    if workload.tokens:  # try once: ART's PyTorchClassifier casts every input to float32
        probe = art_extract("copycat_random", workload, "none", budgets[0], reference_labels(workload, None), seed=SEED)
        return {"unsupported": probe.get("error", "ran")}
    fidelity: dict[str, dict[str, dict[int, Any]]] = {"copycat_random": {}, "knockoff_random": {}}
    for defense in ART_POSTPROCESSORS:
        reference = reference_labels(workload, defenses[defense])
        for attack in fidelity:
            fidelity[attack][defense] = {
                b: art_extract(attack, workload, defense, b, reference, seed=SEED) for b in budgets
            }
    adaptive_budget = 100 if quick else 500
    adaptive = {
        defense: knockoff_adaptive(
            workload, defense, adaptive_budget, reference_labels(workload, defenses[defense]), seed=SEED
        )
        for defense in (("none", "rounding") if quick else ART_POSTPROCESSORS)
    }
    return {
        "fidelity": fidelity,
        "class_labels": class_labels_accuracy(workload),
        "adaptive_budget": adaptive_budget,
        "adaptive": adaptive,
    }


def _cell(entry: dict[str, Any], budget: int) -> str:
    if "fidelity" not in entry:
        return "error"
    used = entry.get("queries", budget)
    return f"{entry['fidelity']:.3f}" + (f" at {used:,}" if used < budget else "")


def _engine_cell(fidelity: dict[int, float], budgets: tuple[int, ...], index: int) -> str:
    """The fidelity at ``budgets[index]``, or where the pool ran out before it ("0.972 at 1,257")."""
    budget = budgets[index]
    if budget in fidelity:
        return f"{fidelity[budget]:.3f}"
    previous = budgets[index - 1] if index else 0
    early = [b for b in fidelity if previous < b < budget]
    return f"{fidelity[early[0]]:.3f} at {early[0]:,}" if early else "-"


def run(*, quick: bool = False) -> BenchResult:
    """Fidelity vs budget for every strategy x defense on both victims, defense utility, and ART beside."""
    logging.getLogger("art").setLevel(logging.ERROR)
    budgets = QUICK_BUDGETS if quick else BUDGETS
    result = BenchResult(name=NAME, title="Model extraction: fidelity vs query budget, defenses, ART")
    data: dict[str, Any] = {"budgets": list(budgets)}
    for workload in (digits_workload(), spam_workload()):
        started = time.perf_counter()
        curves = _fidelity_curves(workload, budgets)
        utility = _utility(workload)
        art = _art(workload, budgets, quick)
        seconds = time.perf_counter() - started
        data[workload.name] = {
            "curves": {f"{s}/{d}": c for (s, d), c in curves.items()},
            "utility": utility,
            "art": art,
            "victim_accuracy": workload.victim_accuracy,
            "seconds": seconds,
        }
        _tables(result, workload, budgets, curves, utility, art)
    result.notes += [
        "Fidelity: top-1 agreement of the surrogate with the victim's answers (the defended victim's labels, "
        "which are the undefended ones except under Gaussian noise) on the whole held-out split (digits 540, "
        "spam 1,673); one seed (0). Each budget trains a fresh surrogate on every answer so far "
        "(`ExtractionConfig` defaults: Adam 3e-3, max(30 epochs, 300 steps), soft labels when revealed).",
        "Attacker pools: the victim's train split (in-distribution public data: the attacker's best case); "
        "Jacobian augmentation seeds 50 points from it; random queries draw uniformly from the input domain "
        "(pixels in [0, 1]; token ids in [0, vocabulary)). Active learning: 50 random, then 100 per step by "
        "entropy.",
        "On spam, Jacobian augmentation steps through the surrogate's embedding (HotFlip-style token "
        "substitutions, new in this change; the engine raised `RuntimeError` on token ids before). Top-k on the "
        "two-class spam filter is k = 1, i.e. label only after renormalisation. The spam test split is 86.6% "
        "ham, so a surrogate that always says ham has fidelity ~0.87.",
        "ART side: the thief is the same architecture, seed, optimiser and number of training steps; fidelity "
        "is measured by us (ART returns the stolen model only) against the same labels. ART has no top-k "
        "postprocessor; its `ReverseSigmoid` and `GaussianNoise` use the engine's parameters (beta 0.7, gamma "
        "1.2; std 0.05) on probabilities (the victim module plus a softmax). ART samples with numpy's global "
        "generator, seeded with 0.",
    ]
    result.data.update(data)
    return result


def _tables(
    result: BenchResult,
    workload: Workload,
    budgets: tuple[int, ...],
    curves: dict[tuple[str, str], dict[str, Any]],
    utility: dict[str, dict[str, Any]],
    art: dict[str, Any],
) -> None:
    header = ["Strategy / defense", *[f"{b:,}" for b in budgets]]
    rows = []
    for strategy in STRATEGIES:
        for defense in DEFENSES:
            curve = curves[(strategy, defense)]
            cells = [_engine_cell(curve["fidelity"], budgets, i) for i in range(len(budgets))]
            rows.append([f"{strategy} / {defense}", *cells])
    result.tables.append(
        f"**{workload.title}**: victim accuracy {fmt_pct(workload.victim_accuracy)}; fidelity at each query "
        f"budget (the attacker's pool holds {workload.pool.shape[0]:,} inputs: the pool strategies stop there, "
        '"at N")\n\n' + table(header, rows)
    )
    urows = []
    for defense in DEFENSES:
        u = utility[defense]
        keeps = "-" if u["keeps_top1"] is None else ("yes" if u["keeps_top1"] else "no")
        urows.append(
            [
                defense,
                fmt_pct(u["accuracy"]),
                f"{u['accuracy_drop'] * 100:+.1f} pts" if defense != "none" else "-",
                fmt_pct(u["top1_agreement"]),
                f"{u['mean_l1_distortion']:.3f}",
                keeps,
            ]
        )
    result.tables.append(
        f"Defense utility cost on {workload.name} (held-out split)\n\n"
        + table(
            [
                "Defense",
                "Victim accuracy",
                "Change",
                "Top-1 agreement with undefended",
                "Mean L1 change",
                "Keeps top-1",
            ],
            urows,
        )
    )
    if "unsupported" in art:
        result.notes.append(
            f"ART on {workload.name}: not comparable. CopycatCNN/KnockoffNets send the inputs through "
            f"`PyTorchClassifier`, which casts them to float32; the token-id victim then fails with "
            f"`{art['unsupported']}`."
        )
        return
    arows = []
    names = {"copycat_random": ("random", "CopycatCNN"), "knockoff_random": ("natural_pool", "KnockoffNets random")}
    for attack, (strategy, label) in names.items():
        for defense, per_budget in art["fidelity"][attack].items():
            engine = curves[(strategy, defense)]["fidelity"]
            cells = [f"{_engine_cell(engine, budgets, i)} / {_cell(per_budget[b], b)}" for i, b in enumerate(budgets)]
            arows.append([f"{strategy} vs ART {label} / {defense}", *cells])
    result.tables.append(
        f"Engine vs ART on {workload.name}: fidelity, engine / ART, at each budget (ART `ClassLabels` stands "
        "for label-only, `Rounded(2)` for rounding)\n\n" + table(["Attack / defense", *header[1:]], arows)
    )
    warned: dict[str, set[str]] = {}
    for attack_runs in art["fidelity"].values():
        for defense, per_budget in attack_runs.items():
            for entry in per_budget.values():
                for warning in entry.get("warnings", []):
                    warned.setdefault(warning, set()).add(defense)
    for warning, defenses in sorted(warned.items()):
        result.notes.append(f"ART warned during extraction ({', '.join(sorted(defenses))}): `{warning}`.")
    cl = art["class_labels"]
    adaptive = art["adaptive"]
    arow = []
    for defense, out in adaptive.items():
        if "error" in out:
            arow.append([defense, "crashed", f"`{out['error']}`"])
        else:
            extra = "; rewards went non-finite" if out.get("nonfinite_rewards") else ""
            arow.append([defense, f"{out['fidelity']:.3f}", (", ".join(out["warnings"]) or "-") + extra])
    result.tables.append(
        f"ART `KnockoffNets(sampling_strategy='adaptive', reward='all')` on the digits pool, "
        f"{art['adaptive_budget']} queries\n\n" + table(["ART postprocessor", "Fidelity", "Error / warnings"], arow)
    )
    result.notes.append(
        f"ART `ClassLabels` on {workload.name}: the victim's accuracy is {fmt_pct(cl['batched'])} when one `predict` "
        f"call answers the held-out set (undefended {fmt_pct(cl['undefended'])}): it sets "
        "`class_labels[:, index_labels] = 1`, a 1 in every row for every predicted class "
        f"({cl['batched_ones_per_row']:.1f} ones per row on average), so argmax reads class 0. One call per input "
        f"gives {fmt_pct(cl['one_call_per_input'])}. The engine's `label_only` keeps "
        f"{fmt_pct(utility['label_only']['accuracy'])} on batches."
    )


# --- detection ------------------------------------------------------------------------------------


def _attack_stream(workload: Workload, strategy_name: str, seed: int) -> QueryStream:
    """The first ``STREAM_LENGTH`` queries an attacker sends to the undefended victim, with the answers."""
    recorder = Recorder(LocalVictim(workload.classifier))
    strategy = STRATEGIES[strategy_name]()
    extract(
        recorder,
        strategy,
        workload.x_eval[:50],
        workload.y_eval[:50],
        _config(workload, (STREAM_LENGTH,), query_batch_size=50),
        pool=workload.pool if strategy.needs_pool or strategy_name == "jacobian" else None,
        evaluation_victim=LocalVictim(workload.classifier),
        seed=seed,
    )
    return QueryStream(torch.cat(recorder.x), np.concatenate(recorder.probs))


def _benign_streams(workload: Workload) -> list[QueryStream]:
    """``BENIGN_STREAMS`` clients, each sending ``STREAM_LENGTH`` distinct held-out inputs in a seeded order."""
    x = workload.x_eval
    probs = LocalVictim(workload.classifier).probabilities(x)
    streams = []
    for index in range(BENIGN_STREAMS):
        order = np.random.default_rng([SEED, 0xBE9, index]).choice(x.shape[0], size=STREAM_LENGTH, replace=False)
        streams.append(QueryStream(x[torch.as_tensor(order)], probs[order]))
    return streams


def _worst(until: dict[str, int | None], strategy: str, seeds: tuple[int, ...]) -> str:
    values = [until[f"{strategy}#{seed}"] for seed in seeds]
    return "never" if any(v is None for v in values) else str(max(values))  # type: ignore[type-var]


def run_detection(*, quick: bool = False) -> BenchResult:
    """Queries until detection per attacker and seed, and the benign false-positive rate, on both victims."""
    seeds = (0,) if quick else (0, 1, 2)
    config = DetectorConfig()
    result = BenchResult(
        name="extraction_detection",
        title="Extraction detection: PRADA + volume + entropy + edits ensemble (default thresholds)",
    )
    rows, ablation = [], []
    data: dict[str, Any] = {"seeds": list(seeds), "config": config.to_dict()}
    for workload in (digits_workload(), spam_workload()):
        attacks = {f"{s}#{seed}": _attack_stream(workload, s, seed) for s in STRATEGIES for seed in seeds}
        benign = _benign_streams(workload)
        report = evaluate_detector(config, attacks, benign)
        data[workload.name] = report.to_dict()
        variants = {"default": report}
        variants["without the edit monitor"] = evaluate_detector(
            dataclasses.replace(config, edit_max_change=None), attacks, benign
        )
        if workload.tokens:
            variants["PRADA alone on bags of words (delta 0.92)"] = evaluate_detector(
                DetectorConfig(
                    prada_token_threshold=0.92, volume_max_queries=None, entropy_max_fraction=None, edit_max_change=None
                ),
                attacks,
                benign,
            )
        for label, variant in variants.items():
            ablation.append(
                [
                    f"{workload.name} / {label}",
                    *[_worst(variant.queries_until_detection, s, seeds) for s in STRATEGIES],
                    f"{variant.benign_flagged} ({fmt_pct(variant.benign_fpr)})",
                ]
            )
        data[f"{workload.name}_variants"] = {label: v.to_dict() for label, v in variants.items()}
        for strategy in STRATEGIES:
            until = [report.queries_until_detection[f"{strategy}#{seed}"] for seed in seeds]
            by = sorted({m for seed in seeds for m in report.attack_flagged_by[f"{strategy}#{seed}"]})
            rows.append(
                [
                    f"{workload.name} / {strategy}",
                    " / ".join("never" if u is None else str(u) for u in until),
                    ", ".join(by) or "-",
                ]
            )
        rows.append(
            [
                f"{workload.name} / {report.n_benign} benign clients",
                f"{report.benign_flagged} flagged ({fmt_pct(report.benign_fpr)})",
                ", ".join(f"{k} {v}" for k, v in report.benign_flagged_by.items() if v) or "-",
            ]
        )
        synthetic = [report.queries_until_detection[f"{s}#{seed}"] for s in SYNTHETIC for seed in seeds]
        caught = all(u is not None and u <= DETECT_BY for u in synthetic)
        result.bars.append(
            Bar(
                f"{workload.name}: every random and Jacobian attacker flagged within {DETECT_BY} queries",
                met=caught,
                detail="; ".join(
                    f"{s}: " + " / ".join(str(report.queries_until_detection[f"{s}#{seed}"]) for seed in seeds)
                    for s in SYNTHETIC
                ),
            )
        )
        result.bars.append(
            Bar(
                f"{workload.name}: <= 1% of >= {BENIGN_STREAMS} benign clients flagged",
                met=report.n_benign >= BENIGN_STREAMS and report.benign_fpr <= MAX_FPR,
                detail=f"{report.benign_flagged} of {report.n_benign} ({fmt_pct(report.benign_fpr)})",
            )
        )
    result.tables.append(
        table(
            [
                f"Victim / client ({STREAM_LENGTH} queries each)",
                "Queries until flagged (seed " + ", ".join(map(str, seeds)) + ")",
                "Flagged by",
            ],
            rows,
        )
    )
    result.tables.append(
        "What each monitor adds: the latest queries-until-flagged over the seeds (never: some seed not flagged "
        f"within {STREAM_LENGTH}), and benign clients flagged\n\n"
        + table(["Victim / detector", *STRATEGIES, f"Benign flagged of {BENIGN_STREAMS}"], ablation)
    )
    result.notes += [
        f"Attack streams: the first {STREAM_LENGTH} queries each strategy sends to the undefended victim "
        "(probabilities revealed), recorded and replayed one second apart; benign clients: "
        f"{BENIGN_STREAMS} streams of {STREAM_LENGTH} distinct held-out inputs each (digits test split, 540; spam "
        "test split, 1,673) in seeded random orders, answered by the same victim.",
        "Detector: `DetectorConfig()` defaults: PRADA delta 0.92 after 100 distances (float inputs; PRADA does "
        "not judge token streams by default), volume 10,000 per hour, entropy: more than 30% of the latest 50 "
        "answers above normalised entropy 0.3, edits: more than 50% of the latest 50 queries within a relative "
        "change of 0.25 of an earlier query (for token ids: at most a quarter of the words changed). "
        "See `evaluations/engine/extraction/detection.py`.",
    ]
    result.data.update(data)
    return result
