"""``python -m benchmarks [--only NAME ...] [--quick] [--threads N] [--json PATH] [--markdown PATH]``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from pathlib import Path

from benchmarks._report import BenchResult, write_doc_section
from benchmarks._timing import environment, load_average, pin_threads

#: Benchmark name -> module; run in this order.
BENCHMARKS = {
    "pgd": "benchmarks.bench_pgd",
    "fgsm": "benchmarks.bench_fgsm",
    "apgd": "benchmarks.bench_apgd",
    "adversarial_training": "benchmarks.bench_adversarial_training",
    "scanning": "benchmarks.bench_scanning",
    "extraction": "benchmarks.bench_extraction",
    "extraction_detection": "benchmarks.bench_extraction:run_detection",
    "detection_throughput": "benchmarks.bench_detection_throughput",
    "ingestion": "benchmarks.bench_ingestion",
    "poisoning": "benchmarks.bench_poisoning",
}

#: Benchmarks that own a marked section of docs/benchmarks.md (``<!-- bench:NAME -->``) and refresh it when they
#: run; the rest of the page (the earlier, hand-assembled sections) is never touched.
DOC_SECTIONS = {"extraction", "extraction_detection", "detection_throughput"}
DOC_SECTIONS.add("ingestion")
DOC_SECTIONS.add("poisoning")
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Side-by-side benchmarks of the evaluation engine; prints Markdown tables.",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a shorter training run (for iterating)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--json", type=Path, help="also write the raw figures as JSON here")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown tables here")
    parser.add_argument(
        "--docs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="refresh the marked sections of docs/benchmarks.md of the benchmarks run "
        f"({', '.join(sorted(DOC_SECTIONS))}); default: on for full runs, off with --quick",
    )
    return parser.parse_args(argv)


def _runner(name: str):  # noqa: ANN202 - a bench's run(quick=...) -> BenchResult
    """``module`` or ``module:function`` (default ``run``)."""
    module, _, function = BENCHMARKS[name].partition(":")
    return getattr(importlib.import_module(module), function or "run")


def _doc_section(name: str, text: str, env: dict, quick: bool) -> str:
    """A section with its own provenance line: it is refreshed alone, apart from the page's Environment."""
    load = env["load_average"]
    load_text = "/".join(f"{x:.2f}" for x in load) if load else "n/a"
    command = f".venv/bin/python -m benchmarks --only {name}" + (" --quick" if quick else "")
    provenance = (
        f"_Measured {env['date']}{' with --quick (not reference figures)' if quick else ''} on {env['cpu_count']} "
        f"CPU cores, torch threads {env['torch_threads']}, load average at start {load_text}; `{command}`._"
    )
    title, _, body = text.partition("\n")
    return f"{title}\n\n{provenance}\n{body}"


def _environment_markdown(env: dict, quick: bool) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    load = env["load_average"]
    lines = [
        f"- Date: {env['date']}{' (--quick: fewer repeats, not the reference figures)' if quick else ''}",
        f"- Machine: {env['processor']}, {env['cpu_count']} CPU cores; {env['platform']}",
        f"- torch threads: {env['torch_threads']} (`torch.set_num_threads`)",
        f"- Load average at start (1/5/15 min): {'/'.join(f'{x:.2f}' for x in load) if load else 'n/a'}",
        f"- Versions: {versions}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and print their Markdown sections."""
    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    threads = pin_threads(args.threads)
    env = environment(threads)
    names = args.only or list(BENCHMARKS)
    sections = [_environment_markdown(env, args.quick), ""]
    print(sections[0], "", sep="\n", flush=True)
    results: list[BenchResult] = []
    for name in names:
        started = time.perf_counter()
        result: BenchResult = _runner(name)(quick=args.quick)
        seconds = time.perf_counter() - started
        load = load_average()
        result.data["wall_seconds"] = seconds
        result.data["load_average_after"] = load
        load_text = "/".join(f"{x:.2f}" for x in load) if load else "n/a"
        text = result.markdown() + f"\n_{name}: {seconds:.0f} s wall; load average after: {load_text}._\n"
        print(text, flush=True)
        sections.append(text)
        results.append(result)
        docs = (not args.quick) if args.docs is None else args.docs
        if docs and name in DOC_SECTIONS:
            write_doc_section(DOC, name, _doc_section(name, text, env, args.quick))
    failed = [f"{r.name}: {b.name}" for r in results for b in r.bars if not b.met]
    summary = "Bars not met: " + "; ".join(failed) if failed else "All bars met."
    print(summary)
    if args.markdown:
        args.markdown.write_text("\n".join(sections) + "\n" + summary + "\n", encoding="utf-8")
    if args.json:
        payload = {"environment": env, "quick": args.quick, "results": [r.to_dict() for r in results]}
        args.json.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
