"""Evaluation jobs through real Celery workers: end-to-end overhead and sharded scale-out.

Builds a fresh PostgreSQL database with one system and the digits small CNN
(``evaluations.demo.train_digits_small_cnn``, registered and scanned), and starts real
``celery worker`` processes (solo pool, 1 torch thread each) on Redis.

(a) Overhead: a robustness run (PGD over all 540 digits test samples) is submitted through
    ``POST /api/runs/`` (Django's test client in this process) to a warm, idle worker, and timed
    from the submission to the moment the run reads ``succeeded`` in the database (polled every
    20 ms); compared with the run's own ``engine_seconds``. Bar: total <= 1.15 x engine time.
(b) Scale-out: the same evaluation with ``shards=2`` (5 sample units per shard), timed the same
    way with 1 worker and with 2 workers. Bar: 2 workers >= 1.7x faster.

Each measurement is repeated three times (once with ``--quick``, which also uses fewer PGD
steps) and the median is reported.

    .venv/bin/python -m benchmarks.service_runs [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks._service_common import (
    ROOT,
    bars_table,
    command_line,
    fresh_database,
    load_average,
    manage,
    median,
    section,
    service_env,
    setup_django,
    table,
    write_section,
)

NAME = "service_runs"
DB_NAME = "garrison_bench_runs"
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
REDIS_DBS = range(11, 16)
SAMPLES = 540
OVERHEAD_BAR = 1.15
SCALE_BAR = 1.7
SETTINGS = "garrison.settings"


def config(steps: int, **extra: Any) -> dict[str, Any]:
    """The robustness config: PGD Linf, 4 budgets, every test sample, no sanity checks (attack time only)."""
    return {
        "attack": "pgd",
        "norm": "linf",
        "epsilons": [0.0, 0.05, 0.1, 0.2],
        "steps": steps,
        "max_samples": SAMPLES,
        "batch_size": 128,
        "shard_size": 54,
        "sanity": "off",
        "seed": 0,
        **extra,
    }


def pick_redis_db() -> str:
    """An empty Redis database number in 11-15, so this benchmark shares no keys with anyone."""
    import redis

    for number in REDIS_DBS:
        client = redis.Redis.from_url(f"{REDIS}/{number}")
        if client.dbsize() == 0:
            return f"{REDIS}/{number}"
    raise RuntimeError(f"no empty Redis database among {list(REDIS_DBS)} at {REDIS}")


class Worker:
    """A ``celery worker`` process (solo pool, 1 torch thread) on the ml and default queues."""

    def __init__(self, env: dict[str, str], log_dir: Path, index: int) -> None:
        self.env, self.index = env, index
        self.log = log_dir / f"worker-{index}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        """Start it."""
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "garrison",
                "worker",
                "--queues",
                "ml,default",
                "--hostname",
                f"bench{self.index}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}",
                "--pool",
                "solo",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env={**os.environ, **self.env, "GARRISON_TORCH_THREADS": "1", "DJANGO_SETTINGS_MODULE": SETTINGS},
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float = 180.0) -> Worker:
        """Wait for the worker's 'ready' log line (it consumes nothing before that)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker {self.index} exited:\n{self.log.read_text()[-4000:]}")
            if self.log.exists() and " ready." in self.log.read_text():
                return self
            time.sleep(0.2)
        raise TimeoutError(f"worker {self.index} not ready after {timeout:.0f} s")

    def task_seconds(self, task: str) -> list[float]:
        """Durations of this worker's finished ``task`` runs, in order (from its log)."""
        text = self.log.read_text() if self.log.exists() else ""
        return [float(s) for s in re.findall(rf"{re.escape(task)}\[[^\]]+\] succeeded in ([0-9.]+)s", text)]

    def shards_done(self) -> int:
        """How many shard tasks this worker finished (from its log)."""
        return len(self.task_seconds("run_robustness_shard"))

    def stop(self) -> None:
        """Warm shutdown, then kill."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


def seed() -> dict[str, Any]:
    """A team, a user, a system and the scanned digits model."""
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile

    from evaluations import services
    from evaluations.demo import DEMO_HYPERPARAMS, train_digits_small_cnn
    from evaluations.models import ScanStatus
    from evaluations.tasks import scan_model_artifact
    from garrison.accounts.models import Membership, Team
    from garrison.accounts.roles import Role
    from threatmodel.models import System

    user = get_user_model().objects.create_user("bench", password=None)
    team = Team.objects.create(name="Bench team", slug="bench-team")
    Membership.objects.create(user=user, team=team, role=Role.ADMIN)
    system = System.objects.create(team=team, name="Digits classifier", slug="digits")
    artifact = services.model_artifact_upload(
        actor=user,
        system=system,
        file=SimpleUploadedFile("digits_small_cnn.safetensors", train_digits_small_cnn()),
        format="safetensors",
        architecture="small_cnn",
        hyperparams=DEMO_HYPERPARAMS,
        input_shape=[1, 8, 8],
        input_bounds=[0.0, 1.0],
        class_names=[str(d) for d in range(10)],
        name="digits small CNN",
    )
    scan_model_artifact.run(artifact.pk)
    artifact.refresh_from_db()
    if artifact.scan_status != ScanStatus.CLEAN:
        raise RuntimeError(f"the digits model did not scan clean: {artifact.scan_message}")
    return {"user": user, "system": system, "model": artifact}


def timed_run(fixture: dict[str, Any], cfg: dict[str, Any], *, timeout: float = 1800.0) -> dict[str, Any]:
    """Submit through the API, poll until finished; returns wall time, engine time and the timestamps."""
    from rest_framework.test import APIClient

    from evaluations.models import EvaluationRun, RunStatus

    client = APIClient()
    client.force_login(fixture["user"])
    body = {
        "system": fixture["system"].pk,
        "kind": "robustness",
        "model": fixture["model"].pk,
        "reference_dataset": "digits",
        "config": cfg,
    }
    wall_submit = time.time()
    started = time.perf_counter()
    response = client.post("/api/runs/", body, format="json")
    if response.status_code != 201:
        raise RuntimeError(f"submit failed: {response.status_code} {response.content[:2000]!r}")
    run_id = response.json()["id"]
    deadline = started + timeout
    while time.perf_counter() < deadline:
        status = EvaluationRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        if status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED):
            break
        time.sleep(0.02)
    total = time.perf_counter() - started
    run = EvaluationRun.objects.get(pk=run_id)
    if run.status != RunStatus.SUCCEEDED:
        raise RuntimeError(f"run {run_id} ended {run.status}: {run.error_message}")
    return {
        "id": run_id,
        "total": total,
        "engine": run.engine_seconds or 0.0,
        "to_claim": run.started_at.timestamp() - wall_submit,
        "claim_to_finish": (run.finished_at - run.started_at).total_seconds(),
        "load": load_average(),
    }


def contention_note(one: list[float], two: list[float]) -> str:
    """Say whether shard tasks slowed down when two ran at once."""
    if not one or not two:
        return "Shard task durations could not be read from the worker logs."
    slowdown = median(two) / median(one)
    if slowdown > 1.15:
        return (
            f"A shard task took {slowdown:.2f}x as long with two workers running as with one: the two "
            f"workers did not each get a free core ({os.cpu_count()} cores, shared with other jobs)."
        )
    return f"Shard tasks took about as long with two workers as with one ({slowdown:.2f}x)."


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the tables and refresh the doc section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat and fewer PGD steps")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else 3
    steps = 150 if args.quick else 500
    load_before = load_average()
    work = Path(tempfile.mkdtemp(prefix="garrison-bench-runs-"))
    broker = pick_redis_db()
    env = service_env(
        fresh_database(DB_NAME),
        MEDIA_ROOT=str(work / "media"),
        GARRISON_VAR_DIR=str(work / "var"),
        CELERY_BROKER_URL=broker,
    )
    print(f"database {DB_NAME}, broker {broker}: migrating and seeding ...", file=sys.stderr)
    manage(env, "migrate", "--noinput")
    setup_django(env)
    fixture = seed()
    workers: list[Worker] = []
    overhead: list[dict[str, Any]] = []
    one: list[dict[str, Any]] = []
    two: list[dict[str, Any]] = []
    try:
        workers.append(Worker(env, work, 1).start().wait_ready())
        print("warming worker 1", file=sys.stderr)
        timed_run(fixture, config(2, max_samples=64))
        for repeat in range(repeats):
            print(f"run {repeat + 1}/{repeats}: overhead ({steps} PGD steps)", file=sys.stderr)
            overhead.append(timed_run(fixture, config(steps)))
        mark_one = workers[0].shards_done(), len(workers[0].task_seconds("merge_robustness_shards"))
        for repeat in range(repeats):
            print(f"run {repeat + 1}/{repeats}: sharded, 1 worker", file=sys.stderr)
            one.append(timed_run(fixture, config(steps, shards=2)))
        workers.append(Worker(env, work, 2).start().wait_ready())
        print("warming worker 2", file=sys.stderr)
        for _ in range(6):  # until the new worker has run a shard (torch and the dataset loaded)
            timed_run(fixture, config(2, max_samples=108, shards=2))
            if workers[1].shards_done():
                break
        before = [w.shards_done() for w in workers]
        merges_before = [len(w.task_seconds("merge_robustness_shards")) for w in workers]
        for repeat in range(repeats):
            print(f"run {repeat + 1}/{repeats}: sharded, 2 workers", file=sys.stderr)
            two.append(timed_run(fixture, config(steps, shards=2)))
    finally:
        for worker in workers:
            worker.stop()
        import redis

        redis.Redis.from_url(broker).flushdb()

    shard_counts = [w.shards_done() - b for w, b in zip(workers, before, strict=True)]
    shard_one = workers[0].task_seconds("run_robustness_shard")[mark_one[0] : mark_one[0] + 2 * repeats]
    merge_one = workers[0].task_seconds("merge_robustness_shards")[mark_one[1] : mark_one[1] + repeats]
    shard_two = [t for w, b in zip(workers, before, strict=True) for t in w.task_seconds("run_robustness_shard")[b:]]
    merge_two = [
        t for w, b in zip(workers, merges_before, strict=True) for t in w.task_seconds("merge_robustness_shards")[b:]
    ]
    rows = []
    for index, r in enumerate(overhead, 1):
        rows.append(
            (
                f"Run {index}",
                f"{r['total']:.2f}",
                f"{r['engine']:.2f}",
                f"{r['total'] / r['engine']:.3f}",
                f"{r['to_claim']:.2f}",
                f"{r['claim_to_finish'] - r['engine']:.2f}",
                r["load"],
            )
        )
    ratio = median([r["total"] / r["engine"] for r in overhead])
    rows.append(
        (
            f"**Median of {len(overhead)}**",
            f"**{median([r['total'] for r in overhead]):.2f}**",
            f"**{median([r['engine'] for r in overhead]):.2f}**",
            f"**{ratio:.3f}**",
            f"{median([r['to_claim'] for r in overhead]):.2f}",
            f"{median([r['claim_to_finish'] - r['engine'] for r in overhead]):.2f}",
            "",
        )
    )
    overhead_table = table(
        [
            "Robustness run",
            "Submit to succeeded s",
            "Engine s",
            "Ratio",
            "Submit to claim s",
            "Claimed, outside engine s",
            "Load after",
        ],
        rows,
    )
    scale_rows = []
    for label, runs in (("1 worker", one), ("2 workers", two)):
        for index, r in enumerate(runs, 1):
            scale_rows.append((f"{label}, run {index}", f"{r['total']:.2f}", r["load"]))
        middle = median([r["total"] for r in runs])
        scale_rows.append((f"**{label}, median of {len(runs)}**", f"**{middle:.2f}**", ""))
    speedup = median([r["total"] for r in one]) / median([r["total"] for r in two])
    scale_table = table(["Sharded run (2 shards)", "Submit to succeeded s", "Load after"], scale_rows)
    task_table = table(
        ["Celery task durations (worker logs)", "1 worker", "2 workers"],
        [
            (
                "Shard task, median s (n)",
                f"{median(shard_one):.2f} ({len(shard_one)})" if shard_one else "?",
                f"{median(shard_two):.2f} ({len(shard_two)})" if shard_two else "?",
            ),
            (
                "Merge task, median s (n)",
                f"{median(merge_one):.2f} ({len(merge_one)})" if merge_one else "?",
                f"{median(merge_two):.2f} ({len(merge_two)})" if merge_two else "?",
            ),
        ],
    )
    bars = [
        (
            f"End-to-end <= {OVERHEAD_BAR} x engine time",
            ratio <= OVERHEAD_BAR,
            f"{ratio:.3f} x ({median([r['total'] for r in overhead]):.2f} s vs "
            f"{median([r['engine'] for r in overhead]):.2f} s)",
        ),
        (f"2 workers >= {SCALE_BAR} x faster than 1", speedup >= SCALE_BAR, f"{speedup:.2f} x"),
    ]
    body = "\n\n".join(
        [
            f"Digits small CNN (`evaluations.demo.train_digits_small_cnn`, channels 8/16), PGD Linf, "
            f"{steps} steps, epsilons 0 / 0.05 / 0.1 / 0.2, all {SAMPLES} digits test samples in units of 54, "
            f"batch 128, sanity checks off (so the engine time is the attack itself and the ratio is not "
            f"flattered by a long serial tail). PostgreSQL (`{DB_NAME}`), Redis broker (`{broker}`), workers: "
            f"`celery worker --pool solo`, `GARRISON_TORCH_THREADS=1`, default progress interval (1 s) and "
            f"heartbeat (10 s), warmed by a small run first. Submitted with `POST /api/runs/` through "
            f"Django's test client in the benchmark process, which polls the run's status every 20 ms.",
            "**(a) End-to-end overhead** (one warm, idle worker; 'Claimed, outside engine' is the worker's "
            "time from claiming the run to recording success minus `engine_seconds`: loading the run, "
            "storing results and files, the robustness chart):",
            overhead_table,
            f"**(b) Scale-out**: the same evaluation with `shards: 2` (each shard 5 units of 54 samples), "
            f"1 worker vs 2 workers (1 torch thread each). Shards of the 2-worker runs executed by worker 1 / "
            f"worker 2 (from their logs): {' / '.join(map(str, shard_counts))}.",
            scale_table,
            contention_note(shard_one, shard_two)
            + " The unsharded run of (a) is the reference for the cost of sharding itself (split task, "
            "model and data loaded per shard and again for the merge).",
            task_table,
            bars_table(bars),
        ]
    )
    print(body)
    write_section(
        NAME,
        section(NAME, "Evaluation jobs", body, command=command_line(NAME, args.quick), load_before=load_before),
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
