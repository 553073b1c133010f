"""Model-file scanning: Garrison's ``scan_path`` vs modelscan on a corpus of malicious and benign files."""

from __future__ import annotations

import copy
import logging
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks._corpus import Sample, build_corpus
from benchmarks._report import Bar, BenchResult, fmt_ms, fmt_pct, table
from benchmarks._timing import interleaved, ratio
from evaluations.engine.scanning import Verdict, scan_path

NAME = "scanning"
DETECTION_BAR = 0.99


def _modelscan_flags(path: Path) -> tuple[bool, str]:
    """Run modelscan (its Python API, default settings) on one file: (flagged, outcome)."""
    from modelscan.modelscan import ModelScan
    from modelscan.settings import DEFAULT_SETTINGS

    report = ModelScan(settings=copy.deepcopy(DEFAULT_SETTINGS)).scan(path)
    if report["issues"]:
        worst = sorted({i.get("severity", "?") for i in report["issues"]})
        return True, "issue " + "/".join(worst)
    if report["errors"]:
        return False, "error"
    if report["summary"]["skipped"]["total_skipped"]:
        return False, "skipped"
    return False, "no issue"


def _garrison_flags(path: Path) -> tuple[bool, str]:
    """Run Garrison's scanner on one file: flagged unless the verdict is clean."""
    verdict = scan_path(path).verdict
    return verdict is not Verdict.CLEAN, str(verdict)


def run(*, quick: bool = False) -> BenchResult:
    """Build the corpus in a temp dir, scan it with both tools, and check that no payload ever ran."""
    logging.getLogger("modelscan").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="garrison-bench-scan-") as tmp:
        root = Path(tmp)
        canary = root / "CANARY_PAYLOAD_RAN"
        corpus = build_corpus(root / "corpus", canary)
        outcomes: dict[str, dict[Path, tuple[bool, str]]] = {"garrison": {}, "modelscan": {}}

        def scan_all(tool: str) -> None:
            fn = _garrison_flags if tool == "garrison" else _modelscan_flags
            for sample in corpus:
                outcomes[tool][sample.path] = fn(sample.path)

        repeats = 1 if quick else 5
        t = interleaved(
            {"garrison": lambda: scan_all("garrison"), "modelscan": lambda: scan_all("modelscan")},
            repeats=repeats,
            warmup=1,
        )
        canary_ran = canary.exists()
    if canary_ran:
        raise RuntimeError(f"A payload ran during the scanning benchmark: {canary} was created.")
    return _result(corpus, outcomes, t, repeats)


def _result(
    corpus: list[Sample], outcomes: dict[str, dict[Path, tuple[bool, str]]], t: Any, repeats: int
) -> BenchResult:
    malicious = [s for s in corpus if s.malicious]
    benign = [s for s in corpus if not s.malicious]
    stats: dict[str, dict[str, Any]] = {}
    for tool, results in outcomes.items():
        detected = sum(results[s.path][0] for s in malicious)
        false_pos = sum(results[s.path][0] for s in benign)
        stats[tool] = {
            "detected": detected,
            "detection_rate": detected / len(malicious),
            "false_positives": false_pos,
            "missed": sorted(f"{s.path.name} ({results[s.path][1]})" for s in malicious if not results[s.path][0]),
            "false_positive_files": sorted(
                f"{s.path.name} ({results[s.path][1]})" for s in benign if results[s.path][0]
            ),
            "outcomes": dict(sorted(_count(results[s.path][1] for s in corpus).items())),
        }
    g, m = stats["garrison"], stats["modelscan"]
    result = BenchResult(
        name=NAME, title=f"Model-file scanning ({len(malicious)} malicious, {len(benign)} benign files)"
    )
    per_file_g = t["garrison"].median / len(corpus)
    per_file_m = t["modelscan"].median / len(corpus)
    result.tables.append(
        table(
            [
                "Scanner",
                "Malicious flagged",
                "Detection rate",
                "Benign flagged (FP)",
                "Corpus median ms",
                "Min ms",
                "ms / file",
            ],
            [
                [
                    "**Garrison** `scan_path`",
                    f"{g['detected']}/{len(malicious)}",
                    fmt_pct(g["detection_rate"]),
                    f"{g['false_positives']}/{len(benign)}",
                    fmt_ms(t["garrison"].median),
                    fmt_ms(t["garrison"].min),
                    f"{1e3 * per_file_g:.2f}",
                ],
                [
                    "modelscan (Python API, default settings)",
                    f"{m['detected']}/{len(malicious)}",
                    fmt_pct(m["detection_rate"]),
                    f"{m['false_positives']}/{len(benign)}",
                    fmt_ms(t["modelscan"].median),
                    fmt_ms(t["modelscan"].min),
                    f"{1e3 * per_file_m:.2f}",
                ],
            ],
        )
    )
    by_category: dict[tuple[bool, str], list[Sample]] = defaultdict(list)
    for s in corpus:
        by_category[(s.malicious, s.category)].append(s)
    rows = []
    for (is_bad, category), members in by_category.items():
        cells = []
        for tool in ("garrison", "modelscan"):
            flagged = sum(outcomes[tool][s.path][0] for s in members)
            cells.append(f"{flagged}/{len(members)}")
        rows.append(["malicious" if is_bad else "benign", category, *cells])
    result.tables.append(table(["Kind", "Category", "Garrison flagged", "modelscan flagged"], rows))
    result.bars += [
        Bar(
            f"Garrison flags >= {100 * DETECTION_BAR:.0f}% of malicious files",
            g["detection_rate"] >= DETECTION_BAR,
            f"{fmt_pct(g['detection_rate'])} ({g['detected']}/{len(malicious)})",
        ),
        Bar(
            "Garrison: 0 false positives on benign files",
            g["false_positives"] == 0,
            f"{g['false_positives']}/{len(benign)}",
        ),
        Bar("no payload ran (canary absent)", True, "canary file never created"),
    ]
    result.notes += [
        "Flagged means Garrison's verdict is not `clean` (malicious, suspicious or rejected); for modelscan, "
        "at least one issue on the file. modelscan errors or skipped files count as not flagged.",
        f"Garrison verdicts over the corpus: {g['outcomes']}.",
        f"modelscan outcomes over the corpus: {m['outcomes']}.",
        f"Time / Garrison time for modelscan: {ratio(t['modelscan'].median, t['garrison'].median):.2f} "
        f"(medians of {repeats}; each tool scans every file once per repeat).",
    ]
    if g["missed"]:
        result.notes.append(f"Garrison missed: {', '.join(g['missed'])}.")
    if g["false_positive_files"]:
        result.notes.append(f"Garrison false positives: {', '.join(g['false_positive_files'])}.")
    if m["missed"]:
        result.notes.append(f"modelscan missed: {', '.join(m['missed'])}.")
    if m["false_positive_files"]:
        result.notes.append(f"modelscan false positives: {', '.join(m['false_positive_files'])}.")
    result.data = {"stats": stats, "timings": {k: v.to_dict() for k, v in t.items()}, "files": len(corpus)}
    return result


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for item in items:
        counts[item] += 1
    return dict(counts)
