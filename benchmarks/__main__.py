"""``python -m benchmarks [--only NAME ...] [--quick] [--threads N] [--json PATH] [--markdown PATH]``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from pathlib import Path

from benchmarks._report import BenchResult
from benchmarks._timing import environment, load_average, pin_threads

#: Benchmark name -> module; run in this order.
BENCHMARKS = {
    "pgd": "benchmarks.bench_pgd",
    "fgsm": "benchmarks.bench_fgsm",
    "apgd": "benchmarks.bench_apgd",
    "adversarial_training": "benchmarks.bench_adversarial_training",
    "scanning": "benchmarks.bench_scanning",
}


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
    return parser.parse_args(argv)


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
        result: BenchResult = importlib.import_module(BENCHMARKS[name]).run(quick=args.quick)
        seconds = time.perf_counter() - started
        load = load_average()
        result.data["wall_seconds"] = seconds
        result.data["load_average_after"] = load
        load_text = "/".join(f"{x:.2f}" for x in load) if load else "n/a"
        text = result.markdown() + f"\n_{name}: {seconds:.0f} s wall; load average after: {load_text}._\n"
        print(text, flush=True)
        sections.append(text)
        results.append(result)
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
