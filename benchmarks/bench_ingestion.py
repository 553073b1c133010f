"""Ingestion checks on the SMS Spam Collection: are poisoned batches held and clean ones auto-accepted?

Scenario (issue 10): the collection is split 80/20 (stratified, seed 0) into the accepted base (4,459
messages) and an incoming pool (1,115). Each batch has 500 messages from the pool:

* clean: 500 pool messages as they are, 20 trials (seeds 0..19); a clean batch is auto-accepted when every
  check passes;
* poisoned: 3% (15) or 10% (50) of the batch are pool spam messages carrying the trigger phrase "blue moon",
  relabelled ham (5 trials each, seeds 100..).

Every batch runs the full check suite (``evaluations.ingestion.checks.run_checks``, the same call the worker
makes): schema, label shift, duplicates, label conflicts, length and token distributions, rare-token bursts,
LSA outliers and the engine's data-only token-trigger poison scan on base + batch. "Flagged" is the union of
the records pointed at by the checks that failed (what "accept without the flagged records" removes); the
poison scan's own recall is reported beside it.
"""

from __future__ import annotations

import statistics
import time

from benchmarks._report import Bar, BenchResult, fmt_pct, table

CLEAN_TRIALS = 20
POISON_TRIALS = 5
BATCH = 500


def _run(base, batch, seed):  # noqa: ANN001, ANN202
    from evaluations.ingestion.checks import run_checks

    started = time.perf_counter()
    report = run_checks(base, batch, schema={"format": "tsv", "class_names": ["ham", "spam"]}, seed=seed)
    return report, time.perf_counter() - started


def run(*, quick: bool = False) -> BenchResult:
    """Clean and poisoned batches through the checks; bars from the issue."""
    from evaluations.ingestion.scenario import poisoned_batch, sms_split

    base, pool = sms_split(seed=0)
    clean_trials = 4 if quick else CLEAN_TRIALS
    poison_trials = 2 if quick else POISON_TRIALS
    seconds: list[float] = []
    clean_rows, accepted, false_checks = [], 0, {}
    for trial in range(clean_trials):
        batch, _ = poisoned_batch(pool, n=BATCH, k=0, seed=trial)
        report, took = _run(base, batch, trial)
        seconds.append(took)
        accepted += report.passed
        for check in report.checks:
            if check.verdict == "fail":
                false_checks[check.name] = false_checks.get(check.name, 0) + 1
        clean_rows.append(report)
    rows = []
    poison_stats = {}
    for rate in (0.03, 0.10):
        k = round(rate * BATCH)
        held = recall_sum = scan_recall_sum = fpr_sum = 0.0
        failed_checks: dict[str, int] = {}
        for trial in range(poison_trials):
            batch, poison = poisoned_batch(pool, n=BATCH, k=k, seed=100 + trial)
            report, took = _run(base, batch, trial)
            seconds.append(took)
            flagged, poison_set = set(report.flagged), set(poison)
            scan = set(report.check("poison_scan").flagged)
            held += not report.passed
            recall_sum += len(flagged & poison_set) / k
            scan_recall_sum += len(scan & poison_set) / k
            fpr_sum += len(flagged - poison_set) / (BATCH - k)
            for check in report.checks:
                if check.verdict == "fail":
                    failed_checks[check.name] = failed_checks.get(check.name, 0) + 1
        stats = {
            "held": held / poison_trials,
            "recall": recall_sum / poison_trials,
            "scan_recall": scan_recall_sum / poison_trials,
            "clean_flagged": fpr_sum / poison_trials,
            "failed_checks": failed_checks,
        }
        poison_stats[rate] = stats
        rows.append(
            [
                f"{fmt_pct(rate)} poison ({k} of {BATCH}), {poison_trials} trials",
                fmt_pct(stats["held"]),
                f"{stats['recall']:.3f}",
                f"{stats['scan_recall']:.3f}",
                fmt_pct(stats["clean_flagged"]),
                ", ".join(f"{name} {count}/{poison_trials}" for name, count in sorted(failed_checks.items())),
            ]
        )
    rows.insert(
        0,
        [
            f"clean, {clean_trials} trials",
            fmt_pct(1 - accepted / clean_trials),
            "-",
            "-",
            fmt_pct(sum(len(r.flagged) for r in clean_rows) / (clean_trials * BATCH)),
            ", ".join(f"{name} {count}/{clean_trials}" for name, count in sorted(false_checks.items())) or "none",
        ],
    )
    result = BenchResult(name="ingestion", title="Ingestion: quarantine checks on SMS spam batches of 500")
    result.tables.append(
        table(
            [
                "Batches",
                "Held",
                "Recall of poison (flagged)",
                "Recall (poison scan alone)",
                "Clean records flagged",
                "Checks that failed",
            ],
            rows,
        )
    )
    result.tables.append(
        table(
            ["Check time per 500-record batch", "Median s", "Min s", "Max s", "Batches"],
            [
                [
                    "run_checks (all checks + poison scan)",
                    f"{statistics.median(seconds):.1f}",
                    f"{min(seconds):.1f}",
                    f"{max(seconds):.1f}",
                    str(len(seconds)),
                ]
            ],
        )
    )
    for rate, stats in poison_stats.items():
        result.bars.append(
            Bar(
                f"{fmt_pct(rate)} poison: held, recall >= 0.95, <= 5% of clean records flagged",
                stats["held"] == 1.0 and stats["recall"] >= 0.95 and stats["clean_flagged"] <= 0.05,
                f"held {fmt_pct(stats['held'])}, recall {stats['recall']:.3f}, clean flagged "
                f"{fmt_pct(stats['clean_flagged'])}",
            )
        )
    result.bars.append(
        Bar(
            "clean batches auto-accepted in >= 95% of trials",
            accepted / clean_trials >= 0.95,
            f"{accepted} of {clean_trials} ({fmt_pct(accepted / clean_trials)})",
        )
    )
    low, high = poison_stats[0.03], poison_stats[0.10]
    result.notes += [
        "Base 4,459 / pool 1,115 messages (stratified 80/20, seed 0); trigger phrase 'blue moon' appended to spam "
        "relabelled ham; family-wise alpha 0.01 split over 7 statistical checks; checks run in one process on a "
        "2-core machine shared with other jobs.",
        "Flagged = records named by the failed checks (rare-token bursts, label conflicts, outliers, poison scan). "
        f"The engine's token-trigger scan alone recalls {low['scan_recall']:.2f} of the 3% poison and "
        f"{high['scan_recall']:.2f} of the 10% poison; the last column lists every check that failed, and each "
        "failed check's records count as flagged.",
    ]
    result.data = {
        "clean_accepted": accepted,
        "clean_trials": clean_trials,
        "poison": {str(k): v for k, v in poison_stats.items()},
        "seconds": seconds,
    }
    return result
