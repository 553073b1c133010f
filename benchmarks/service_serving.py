"""The serving guard under load and under attack: ``POST /api/serve/<system>/<deployment>/predict`` via gunicorn.

Builds a fresh PostgreSQL database, trains the demo digits CNN (``small_cnn`` with the demo's
hyperparameters, trained as the serving tests train it), registers it through the services and scans
it clean, and deploys it twice: **unguarded** (full probabilities, monitor off) and **guarded**
(extraction monitor on, reverse-sigmoid output policy). Both have rate limits far above the load, so
only the guard's own cost is measured; telemetry sampling is the default on both. The cache is Redis
(``CACHE_URL``, a database index of its own, flushed at the start), as in production, where rate-limit
windows and monitor state live.

1. Latency: gunicorn (2 sync workers, DEBUG off) on loopback, ``wrk`` at 16 connections (3 s per run,
   2 s with ``--quick``), 32 runs per deployment (8 with ``--quick``) alternating in ABBA order; the bar is read
   on the median of the run pairs' p95 ratios and on the ratio of the median p95s, both; batch-1 POST bodies
   rotating over held-out digits, each request with a valid key (7 fresh keys per run, round robin).
   Then one 10 s run at 1 connection each (the unqueued time), and the in-process cost breakdown of one
   guarded request (SQL queries, parse, rate limit, model, monitor, telemetry).
2. Detection over real HTTP: engine attackers (random queries, Jacobian augmentation) through
   ``HttpVictim`` at 1 and 10 inputs per request against the guarded deployment, each with its own key,
   until the monitor's alert row says when it flagged them; then 100 benign clients (own key each)
   replaying 75 held-out digits each from 4 threads: the fraction flagged. Finally one attacker against
   a copy of the guarded deployment with the default rate limits: the 429s and the seconds it waited.

Bars (issue 9): guarded p95 <= 1.15 x unguarded p95 at 16 connections; attacker flagged within 200
queries; benign false-positive rate <= 1% over 100 clients.

    .venv/bin/python -m benchmarks.service_serving [--quick]

Needs ``wrk``, ``gunicorn`` (the ``bench`` extra), PostgreSQL and Redis on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._report import write_doc_section
from benchmarks._service_common import (
    ROOT,
    bars_table,
    command_line,
    cores,
    free_port,
    fresh_database,
    load_average,
    manage,
    median,
    service_env,
    setup_django,
    table,
    wait_for_port,
)
from benchmarks.service_dashboards import LUA_STATS, drain, run_wrk

NAME = "service_serving"
DOC_NAME = "serving"
DOC = ROOT / "docs" / "benchmarks.md"
DB_NAME = "garrison_bench_serving"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
CONNECTIONS = 16
#: Alternating load runs per deployment, in ABBA order (U G G U U G G U ...): on this shared VM the machine's
#: speed drifts by tens of percent within a minute (the CPU time of the same request moves by up to 1.7 x between
#: 12 s runs), so many short interleaved runs, compared pair by pair, measure the guard, not the drift.
REPEATS = 32
#: Keys per load run: about 170-350 queries per key per 3 s run, by the machine's speed (no key repeats an input
#: within a run), so each key's detector works on a history of that length (the monitor's cost grows with it; see
#: the scaling table).
KEYS_PER_RUN = 7
PROFILE_REQUESTS = 100
P95_RATIO_BAR = 1.15
DETECTION_BAR = 200
BENIGN_FP_BAR = 0.01
BENIGN_CLIENTS = 100
BENIGN_QUERIES = 75
BENIGN_THREADS = 4
ATTACK_BUDGETS = (50, 100, 200, 400)
RATE_ATTACK_QUERIES = 800
EPOCHS = 25  # as tests/evaluations/serving/conftest.py: confident on natural digits (the monitor's calibration)
HIGH_LIMITS = {"burst": 100_000, "rate_per_minute": 1_000_000, "daily_quota": 100_000_000}


def seed(work: Path) -> dict[str, Any]:
    """A team, an editor, the digits system, the trained CNN scanned clean, and the three deployments."""
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile

    from evaluations import services as ev
    from evaluations.demo import DEMO_HYPERPARAMS, DIGITS_CLASSES, train_digits_small_cnn
    from evaluations.serving import services as serving
    from evaluations.serving.models import MonitorAction, OutputPolicy
    from evaluations.tasks import scan_model_artifact
    from garrison.accounts.models import Membership, Team
    from garrison.accounts.roles import Role
    from threatmodel.models import System

    user = get_user_model().objects.create_user("bench-serving", password="bench-password-not-secret-0")  # noqa: S106
    team = Team.objects.create(name="Bench serving", slug="bench-serving")
    Membership.objects.create(user=user, team=team, role=Role.ADMIN)
    system = System.objects.create(team=team, name="Digits classifier", slug="digits-classifier", criticality_tier=2)
    started = time.perf_counter()
    data = train_digits_small_cnn(epochs=EPOCHS)
    train_seconds = time.perf_counter() - started
    artifact = ev.model_artifact_upload(
        actor=user,
        system=system,
        file=SimpleUploadedFile("digits_small_cnn.safetensors", data),
        format="safetensors",
        architecture="small_cnn",
        hyperparams=DEMO_HYPERPARAMS,
        input_shape=[1, 8, 8],
        input_bounds=[0.0, 1.0],
        class_names=DIGITS_CLASSES,
        name="digits small_cnn (bench)",
    )
    scan_model_artifact.run(artifact.pk)  # synchronously, as the worker would
    artifact.refresh_from_db()
    if artifact.scan_status != "clean":
        raise RuntimeError(f"the bench model was not scanned clean: {artifact.scan_status} {artifact.scan_report}")
    common = {"actor": user, "system": system, "model_artifact": artifact}
    unguarded = serving.deployment_create(
        **common,
        name="Unguarded",
        slug="unguarded",
        output_policy=OutputPolicy.FULL,
        monitor_enabled=False,
        **HIGH_LIMITS,
    )
    guarded = serving.deployment_create(
        **common,
        name="Guarded",
        slug="guarded",
        output_policy=OutputPolicy.REVERSE_SIGMOID,
        monitor_enabled=True,
        monitor_action=MonitorAction.LOG,
        **HIGH_LIMITS,
    )
    defaults = serving.deployment_create(
        **common,
        name="Guarded, default limits",
        slug="guarded-default-limits",
        output_policy=OutputPolicy.REVERSE_SIGMOID,
        monitor_enabled=True,
        monitor_action=MonitorAction.LOG,
    )
    return {
        "user": user,
        "artifact": artifact,
        "train_seconds": train_seconds,
        "deployments": {"unguarded": unguarded, "guarded": guarded, "defaults": defaults},
    }


def issue_keys(user: Any, deployment: Any, n: int, owner: str) -> list[tuple[Any, str]]:
    """``n`` consumer keys of the deployment, issued through the service (audited)."""
    from evaluations.serving import services as serving

    return [
        serving.consumer_key_issue(actor=user, deployment=deployment, owner=f"{owner} {i}", purpose="benchmark")
        for i in range(n)
    ]


def predict_script(path: Path, predict_path: str, secrets: list[str], bodies: list[str]) -> Path:
    """A wrk script: POST batch-1 bodies, keys round robin, each key stepping through all the bodies."""
    keys = ",".join(json.dumps(s) for s in secrets)
    rows = ",\n".join(json.dumps(b) for b in bodies)  # JSON string escapes are Lua string escapes
    path.write_text(
        LUA_STATS
        + f"""
local keys = {{{keys}}}
local bodies = {{
{rows}
}}
function setup(thread) table.insert(threads, thread); thread:set("tid", #threads) end
local n = 0
function request()
  n = n + 1
  local k = (n + tid) % #keys + 1
  local b = (math.floor(n / #keys) * 2 + tid) % #bodies + 1
  return wrk.format("POST", "{predict_path}",
    {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. keys[k]}}, bodies[b])
end
"""
    )
    return path


def digits_test() -> tuple[np.ndarray, np.ndarray]:
    """The held-out digits split (the model is trained on the train split of the same seed)."""
    from evaluations.engine.datasets import load_reference

    split = load_reference("digits", seed=0)
    return np.asarray(split.test.x, dtype=np.float64), np.asarray(split.test.y)


RATE_STAGE = "rate limit (Redis; guarded: + monitor log)"


def profile_in_process(fixture: dict[str, Any], x: np.ndarray) -> dict[str, Any]:
    """One guarded and one unguarded request in this process: SQL queries and the time of each stage."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from evaluations.serving import api, monitor, predictor, ratelimit, telemetry

    stages: dict[str, list[float]] = {}
    current = {"name": ""}

    def timed(module: Any, name: str, label: str) -> Any:
        original = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                stages.setdefault(f"{current['name']}|{label}", []).append(time.perf_counter() - started)

        setattr(module, name, wrapper)
        return original

    patches = [
        (api, "parse_inputs", "parse + validate", None),
        (ratelimit, "consume", RATE_STAGE, None),
        (predictor, "predict", "model + output policy", None),
        (monitor, "observe", "monitor (detector; no round trip)", None),
        (telemetry, "maybe_log", "telemetry", None),
    ]
    originals = [(module, name, timed(module, name, label)) for module, name, label, _ in patches]
    out: dict[str, Any] = {}
    names = ("unguarded", "guarded")
    try:
        client = Client()
        secrets = {
            name: issue_keys(fixture["user"], fixture["deployments"][name], 1, f"profile {name}")[0][1]
            for name in names
        }
        bodies = [json.dumps({"inputs": [row.tolist()]}) for row in x[: PROFILE_REQUESTS + 10]]

        def post(name: str, body: str) -> Any:
            path = fixture["deployments"][name].predict_path
            headers = {"HTTP_AUTHORIZATION": f"Bearer {secrets[name]}"}
            return client.post(path, data=body, content_type="application/json", **headers)

        for body in bodies[:10]:  # warm: model load, monitor state, connections
            for name in names:
                post(name, body)
        stages.clear()
        per: dict[str, dict[str, list[Any]]] = {name: {"totals": [], "counts": []} for name in names}
        for index, body in enumerate(bodies[10:]):
            for name in names if index % 2 == 0 else names[::-1]:  # interleaved: both see the same machine load
                current["name"] = name
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    response = post(name, body)
                    per[name]["totals"].append(time.perf_counter() - started)
                assert response.status_code == 200, (name, response.status_code, response.content[:300])
                per[name]["counts"].append(len(queries.captured_queries))
        for name in names:
            mine = {label.split("|", 1)[1]: times for label, times in stages.items() if label.startswith(name + "|")}
            out[name] = {
                "requests": len(per[name]["totals"]),
                "total_ms": 1000 * median(per[name]["totals"]),
                "queries_median": median(per[name]["counts"]),
                "queries_max": max(per[name]["counts"]),
                "stages": {label: 1000 * median(times) for label, times in mine.items()},
            }
    finally:
        for module, name, original in originals:
            setattr(module, name, original)
    return out


def _detector_arithmetic() -> str:
    """Which arithmetic the guarded deployment's detector ran: the C kernels, or numpy where they were not built."""
    from evaluations.engine.extraction import detection

    if detection._kernels is None:
        return "numpy (the C kernels of `evaluations/engine/extraction/_kernels.c` are not built in this install)"
    return "the C kernels (`evaluations/engine/extraction/_kernels.c`)"


def redis_round_trip_ms() -> float:
    """The median time of one cache read of a missing key (one Redis round trip from Django)."""
    from django.core.cache import cache

    times = []
    for i in range(200):
        started = time.perf_counter()
        cache.get(f"bench:missing:{i}")
        times.append(time.perf_counter() - started)
    return 1000 * median(times)


def monitor_scaling(fixture: dict[str, Any], x: np.ndarray, y: np.ndarray) -> list[dict[str, Any]]:
    """What one batch-1 ``monitor.observe`` costs for a key that already has N queries of benign history.

    This is ``observe`` without a request's ticket: it appends and reads the log in a round trip of its own
    (the endpoint's requests share the rate limiter's), so it is an upper bound of the endpoint's monitor cost.
    """
    from evaluations.serving import monitor

    deployment = fixture["deployments"]["guarded"]
    config = monitor.config_for(deployment)
    rows = []
    # 1,950 is under HISTORY_LIMIT (2,000), where a key's log starts a new epoch (flagged or not).
    for history in (50, 500, 1000, 1950, 4000):
        key_id = 10_000_000 + history  # no such key in the database: only its state in the cache
        rng = np.random.default_rng(history)
        order = rng.integers(0, len(x), size=history)
        noisy = np.clip(x[order] + rng.normal(0, 0.02, size=x[order].shape), 0, 1)
        labels = y[order]
        seen = np.eye(10)[labels] * 0.9 + 0.01
        started = time.perf_counter()
        monitor.observe(deployment.pk, key_id, noisy, seen, labels, config=config)
        build_seconds = time.perf_counter() - started
        times = []
        for i in range(20):
            one = np.clip(x[i : i + 1] + rng.normal(0, 0.02, size=x[i : i + 1].shape), 0, 1)
            started = time.perf_counter()
            state = monitor.observe(
                deployment.pk, key_id, one, np.eye(10)[y[i : i + 1]] * 0.9 + 0.01, y[i : i + 1], config=config
            )
            times.append(time.perf_counter() - started)
        logged = monitor.log_length(monitor._state_key(deployment.pk, key_id, config))
        rows.append(
            {
                "history": history,
                "observe_ms": 1000 * median(times),
                "log_records": logged,
                "flagged": bool(state.flagged),
                "build_seconds": build_seconds,
            }
        )
        monitor.forget(deployment, key_id)
    return rows


def _victim(base: str, deployment: Any, secret: str, batch_size: int) -> Any:
    from evaluations.engine.extraction import HttpVictim

    return HttpVictim(
        base + deployment.predict_path,
        input_shape=(1, 8, 8),
        num_classes=10,
        bounds=(0.0, 1.0),
        api_key=secret,
        batch_size=batch_size,
        timeout=60.0,
    )


def attackers(base: str, fixture: dict[str, Any], x: np.ndarray, y: np.ndarray) -> list[dict[str, Any]]:
    """Engine attackers over HTTP against the guarded deployment; when the monitor flagged each one."""
    import torch

    from evaluations.engine.extraction import ExtractionConfig, JacobianAugmentation, RandomQueries, extract
    from evaluations.serving.models import MonitorAlert

    deployment = fixture["deployments"]["guarded"]
    rows = []
    for strategy_name in ("random", "jacobian"):
        for batch in (1, 10):
            key, secret = issue_keys(fixture["user"], deployment, 1, f"attacker {strategy_name} b{batch}")[0]
            _, eval_secret = issue_keys(fixture["user"], deployment, 1, f"evaluation {strategy_name} b{batch}")[0]
            strategy = RandomQueries() if strategy_name == "random" else JacobianAugmentation(step=0.1, seed_size=20)
            victim = _victim(base, deployment, secret, batch)
            started = time.perf_counter()
            result = extract(
                victim,
                strategy,
                torch.tensor(x[:100], dtype=torch.float32),
                torch.tensor(y[:100]),
                ExtractionConfig(
                    budgets=ATTACK_BUDGETS,
                    surrogate="mlp",
                    epochs=2,
                    min_steps=20,
                    query_batch_size=batch,
                    transfer_attack=None,
                ),
                pool=torch.tensor(x[100:300], dtype=torch.float32),
                evaluation_victim=_victim(base, deployment, eval_secret, 50),
                seed=0,
            )
            seconds = time.perf_counter() - started
            alert = MonitorAlert.objects.filter(key=key).order_by("created_at").first()
            key.refresh_from_db()
            rows.append(
                {
                    "strategy": strategy_name,
                    "batch": batch,
                    "queries_sent": victim.queries_used,
                    "flagged_at": alert.queries if alert else None,
                    "monitors": list(alert.monitors) if alert else [],
                    "fidelity": {p.budget: p.fidelity for p in result.curve},
                    "seconds": seconds,
                }
            )
            print(f"  attacker {strategy_name} batch {batch}: {rows[-1]}", file=sys.stderr)
    return rows


def benign_clients(base: str, fixture: dict[str, Any], x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """100 clients (a key each) replaying held-out digits in batches of 1 to 10, from a few threads."""
    import torch

    from evaluations.serving.models import MonitorAlert

    deployment = fixture["deployments"]["guarded"]
    keys = issue_keys(fixture["user"], deployment, BENIGN_CLIENTS, "benign client")
    rng = np.random.default_rng(7)
    plans = [(secret, rng.permutation(len(x))[:BENIGN_QUERIES], int(rng.integers(1, 11))) for _, secret in keys]
    correct, answered, errors = [0], [0], []
    lock = threading.Lock()

    def client(plan: tuple[str, np.ndarray, int]) -> None:
        secret, order, batch = plan
        try:
            answer = _victim(base, deployment, secret, batch).query(torch.tensor(x[order], dtype=torch.float32))
            with lock:
                correct[0] += int((answer.labels == y[order]).sum())
                answered[0] += len(order)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            with lock:
                errors.append(repr(exc)[:200])

    started = time.perf_counter()
    pending = list(plans)

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                plan = pending.pop()
            client(plan)

    threads = [threading.Thread(target=worker) for _ in range(BENIGN_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    key_ids = [key.pk for key, _ in keys]
    alerts = list(MonitorAlert.objects.filter(key_id__in=key_ids))
    return {
        "clients": len(keys),
        "queries": answered[0],
        "accuracy": correct[0] / max(1, answered[0]),
        "flagged": len({a.key_id for a in alerts}),
        "flagged_by": sorted({m for a in alerts for m in a.monitors}),
        "flagged_at": sorted(a.queries for a in alerts),
        "errors": errors,
        "seconds": seconds,
    }


def rate_limited_attacker(base: str, fixture: dict[str, Any]) -> dict[str, Any]:
    """A random-query attacker of RATE_ATTACK_QUERIES queries (10 per request) against the default limits."""
    import torch

    from evaluations.serving.evaluation import MeteredHttpVictim
    from evaluations.serving.models import MonitorAlert

    deployment = fixture["deployments"]["defaults"]
    key, secret = issue_keys(fixture["user"], deployment, 1, "rate-limited attacker")[0]
    spec = type("Spec", (), {"input_shape": (1, 8, 8), "num_classes": 10, "bounds": (0.0, 1.0)})()
    victim = MeteredHttpVictim.create(
        base + deployment.predict_path, secret, classifier=spec, batch_size=10, max_wait=600.0
    )
    queries = torch.rand((RATE_ATTACK_QUERIES, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    started = time.perf_counter()
    victim.query(queries)
    seconds = time.perf_counter() - started
    alert = MonitorAlert.objects.filter(key=key).first()
    return {
        "queries": victim.queries_used,
        "limits": f"burst {deployment.burst}/s, {deployment.rate_per_minute}/min, {deployment.daily_quota:,}/day",
        "rate_limited": victim.metering["rate_limited_responses"],
        "waited": victim.metering["seconds_waited"],
        "seconds": seconds,
        "flagged_at": alert.queries if alert else None,
    }


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3 of proc(5) first); [] if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _proc_cpu(fields: list[str], *, children: bool = False) -> float:
    """CPU seconds (user + system) of a process's ``_stat`` fields, plus its reaped children's with ``children``."""
    if not fields:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / _TICK


def _pids(name: str) -> list[int]:
    """Processes whose command name is ``name``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def cpu_snapshot(server_pid: int) -> dict[str, float]:
    """CPU seconds so far of the gunicorn workers, Redis, PostgreSQL (with its exited backends) and our children
    (wrk), to charge each load run's CPU to the processes that spent it."""
    import resource

    try:
        workers = [int(p) for p in Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()]
    except OSError:
        workers = []
    postgres = {pid: _stat(pid) for pid in _pids("postgres")}
    # the postmaster (whose parent is no postgres) with its reaped backends, and the live backends
    postgres_cpu = sum(
        _proc_cpu(fields, children=not fields or int(fields[1]) not in postgres) for fields in postgres.values()
    )
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "gunicorn workers": sum(_proc_cpu(_stat(p)) for p in workers),
        "redis": sum(_proc_cpu(_stat(p)) for p in _pids("redis-server")),
        "postgres": postgres_cpu,
        "wrk": usage.ru_utime + usage.ru_stime,
    }


def measured_run(server_pid: int, url: str, script: Path, *, seconds: int, connections: int) -> dict[str, Any]:
    """One wrk run with the CPU milliseconds per request each process group spent on it."""
    before = cpu_snapshot(server_pid)
    result = run_wrk(url, script, seconds=seconds, connections=connections)
    after = cpu_snapshot(server_pid)
    result["cpu_ms_per_request"] = {k: 1000 * (after[k] - before[k]) / result["requests"] for k in before}
    return result


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: median([r[k] for r in runs]) for k in ("p50", "p95", "p99", "rps", "requests", "non2xx", "errors")}


def _pair_ratios(results: dict[str, list[dict[str, Any]]]) -> list[float]:
    """Guarded / unguarded p95 of each pair of neighbouring runs (run i of each: ABBA order makes them neighbours)."""
    return [g["p95"] / u["p95"] for u, g in zip(results["unguarded"], results["guarded"], strict=True)]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the section and refresh it in docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 runs of 2 s per deployment instead of 32 of 3 s")
    parser.add_argument("--skip-rate-limits", action="store_true", help="skip the default-limits attacker row")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--keep", action="store_true", help="leave the bench files in place")
    args = parser.parse_args(argv)
    seconds = 2 if args.quick else 3
    single_seconds = 5 if args.quick else 10
    repeats = 8 if args.quick else REPEATS
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        print("gunicorn is not installed: .venv/bin/pip install 'gunicorn>=22'", file=sys.stderr)
        return 2
    redis_db = REDIS_URL.rsplit("/", 1)[-1]
    subprocess.run(["redis-cli", "-n", redis_db, "FLUSHDB"], check=True, capture_output=True)
    load_before = load_average()
    work = Path(tempfile.mkdtemp(prefix="garrison-bench-serving-"))
    env = service_env(
        fresh_database(DB_NAME),
        MEDIA_ROOT=str(work / "media"),
        GARRISON_VAR_DIR=str(work / "var"),
        CACHE_URL=REDIS_URL,
        GARRISON_SERVING_BASE_URL="http://127.0.0.1:0",
    )
    print(f"database {DB_NAME}: migrating, training and deploying ...", file=sys.stderr)
    manage(env, "migrate", "--noinput")
    setup_django(env)
    import torch

    torch.set_num_threads(1)  # this process shares the 2 cores with gunicorn and wrk
    fixture = seed(work)
    x, y = digits_test()
    profile = profile_in_process(fixture, x)
    profile_extra = {"redis_ms": redis_round_trip_ms(), "monitor": monitor_scaling(fixture, x, y)}
    print(f"in-process: {profile} {profile_extra}", file=sys.stderr)
    from django.db import connections

    connections.close_all()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (work / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [str(gunicorn), "garrison.wsgi:application", "--workers", "2", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    names = ("unguarded", "guarded")
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in (*names, "unguarded-1", "guarded-1")}
    bodies = [
        json.dumps({"inputs": [row.tolist()]}) for row in x[300:]
    ]  # held-out digits the attackers' pools do not use
    detection: dict[str, Any] = {}
    try:
        wait_for_port(port)

        def script(name: str, tag: str) -> Path:
            deployment = fixture["deployments"][name]
            secrets = [s for _, s in issue_keys(fixture["user"], deployment, KEYS_PER_RUN, f"wrk {tag}")]
            connections.close_all()
            return predict_script(work / f"{name}-{tag}.lua", deployment.predict_path, secrets, bodies)

        for name in names:  # warm both workers: torch import, model load, connections
            run_wrk(base + "/", script(name, "warm"), seconds=5, connections=2, require=False)
            drain(port)
        for repeat in range(repeats):
            for name in names if repeat % 2 == 0 else names[::-1]:
                print(f"run {repeat + 1}/{repeats}: {name}, {CONNECTIONS} connections, {seconds} s", file=sys.stderr)
                lua = script(name, f"r{repeat}")
                results[name].append(
                    measured_run(server.pid, base + "/", lua, seconds=seconds, connections=CONNECTIONS)
                )
                drain(port)
        for name in names:
            lua = script(name, "single")
            results[f"{name}-1"].append(run_wrk(base + "/", lua, seconds=single_seconds, connections=1))
            drain(port)
        from evaluations.serving.models import MonitorAlert

        load_alerts = MonitorAlert.objects.filter(key__owner__startswith="wrk ").count()
        print("detection: attackers ...", file=sys.stderr)
        detection["attackers"] = attackers(base, fixture, x, y)
        print("detection: benign clients ...", file=sys.stderr)
        detection["benign"] = benign_clients(base, fixture, x, y)
        if not args.skip_rate_limits:
            print("rate limits: attacker at the default limits ...", file=sys.stderr)
            detection["rate"] = rate_limited_attacker(base, fixture)
        connections.close_all()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    print(
        "raw: "
        + json.dumps(
            {"profile": profile, "extra": profile_extra, "results": results, "detection": detection}, default=str
        ),
        file=sys.stderr,
    )
    body = report(fixture, profile, profile_extra, results, detection, load_alerts, seconds, single_seconds)
    print(body)
    if not args.no_doc:
        now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        header = (
            f"### Serving guard: guarded vs unguarded predict under load, extraction detection over HTTP\n\n"
            f"Measured {now} on {cores()} cores (shared with other jobs); load average (1/5/15 min) "
            f"{load_before} at the start and {load_average()} at the end. Command: "
            f"`{command_line(NAME, args.quick)}`.\n\n"
        )
        write_doc_section(DOC, DOC_NAME, header + body)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(
    fixture: dict[str, Any],
    profile: dict[str, Any],
    profile_extra: dict[str, Any],
    results: dict[str, list[dict[str, Any]]],
    detection: dict[str, Any],
    load_alerts: int,
    seconds: int,
    single_seconds: int,
) -> str:
    """The section's Markdown: setup, latency, breakdown, detection, rate limits, bars."""
    per_key = median([r["requests"] / KEYS_PER_RUN for r in results["guarded"]])
    labels = {
        "unguarded": "Unguarded (full probabilities, monitor off)",
        "guarded": "Guarded (monitor + reverse sigmoid)",
    }
    repeats = len(results["guarded"])
    rows = []
    for name in ("unguarded", "guarded"):
        m = _median_run(results[name])
        p95s = [r["p95"] for r in results[name]]
        rows.append(
            (
                f"**{labels[name]}, median of {repeats} runs**",
                CONNECTIONS,
                f"**{m['p50']:.1f}**",
                f"**{m['p95']:.1f}**",
                f"**{m['p99']:.1f}**",
                f"**{m['rps']:.1f}**",
                f"**{sum(r['non2xx'] for r in results[name])}**",
                f"**{sum(r['errors'] - r['non2xx'] for r in results[name])}**",
                f"p95 of single runs: {min(p95s):.0f}-{max(p95s):.0f} ms",
            )
        )
        s = results[f"{name}-1"][0]
        rows.append(
            (
                f"{labels[name]}, 1 connection ({single_seconds} s)",
                1,
                f"{s['p50']:.1f}",
                f"{s['p95']:.1f}",
                f"{s['p99']:.1f}",
                f"{s['rps']:.1f}",
                s["non2xx"],
                s["errors"] - s["non2xx"],
                "",
            )
        )
    latency = table(
        ["Deployment", "Conns", "p50 ms", "p95 ms", "p99 ms", "Requests/s", "Non-2xx (all runs)", "Socket errors", ""],
        rows,
    )
    groups = list(results["unguarded"][0]["cpu_ms_per_request"])
    per_request = {
        name: {g: median([r["cpu_ms_per_request"][g] for r in results[name]]) for g in groups}
        for name in ("unguarded", "guarded")
    }
    cpu = table(
        [
            f"CPU ms per request at {CONNECTIONS} connections (median of {repeats} runs)",
            "Unguarded",
            "Guarded",
            "Added",
        ],
        [
            *(
                (
                    g,
                    f"{per_request['unguarded'][g]:.2f}",
                    f"{per_request['guarded'][g]:.2f}",
                    f"{per_request['guarded'][g] - per_request['unguarded'][g]:+.2f}",
                )
                for g in groups
            ),
            (
                "**All**",
                *(f"**{sum(per_request[n].values()):.2f}**" for n in ("unguarded", "guarded")),
                f"**{sum(per_request['guarded'].values()) - sum(per_request['unguarded'].values()):+.2f}**",
            ),
        ],
    )
    stage_names = sorted(
        {s for p in profile.values() for s in p["stages"]}, key=list(profile["guarded"]["stages"]).index
    )
    breakdown = table(
        [f"One batch-1 request, in-process (median of {PROFILE_REQUESTS}, interleaved)", "Unguarded", "Guarded"],
        [
            (
                "SQL queries (median / max)",
                *(f"{p['queries_median']:.0f} / {p['queries_max']}" for p in profile.values()),
            ),
            *(
                (
                    f"{stage} ms",
                    *(f"{p['stages'].get(stage, 0.0):.2f}" if stage in p["stages"] else "-" for p in profile.values()),
                )
                for stage in stage_names
            ),
            (
                "rest: key lookup (SQL), JSON, Django and the test client ms",
                *(f"{p['total_ms'] - sum(p['stages'].values()):.2f}" for p in profile.values()),
            ),
            ("Total (Django test client) ms", *(f"{p['total_ms']:.2f}" for p in profile.values())),
        ],
    )
    attack_rows = [
        (
            f"{a['strategy']}, {a['batch']} per request",
            a["queries_sent"],
            a["flagged_at"] if a["flagged_at"] is not None else "not flagged",
            ", ".join(a["monitors"]) or "-",
            " / ".join(f"{a['fidelity'].get(b, float('nan')):.2f}" for b in ATTACK_BUDGETS),
            f"{a['seconds']:.0f}",
        )
        for a in detection.get("attackers", [])
    ]
    attack_table = table(
        [
            "Attacker (own key, guarded deployment)",
            "Queries sent",
            "Flagged at query",
            "Monitors",
            f"Fidelity at {' / '.join(map(str, ATTACK_BUDGETS))}",
            "Seconds",
        ],
        attack_rows,
    )
    benign = detection.get("benign", {})
    benign_table = table(
        ["Benign clients", "Queries", "Accuracy", "Flagged", "Flagged by", "Errors", "Seconds"],
        [
            (
                f"{benign['clients']} clients x {BENIGN_QUERIES} held-out digits, batches of 1-10, "
                f"{BENIGN_THREADS} threads",
                benign["queries"],
                f"{benign['accuracy']:.3f}",
                f"{benign['flagged']} ({100 * benign['flagged'] / benign['clients']:.0f}%)",
                ", ".join(benign["flagged_by"]) or "-",
                len(benign["errors"]),
                f"{benign['seconds']:.0f}",
            )
        ],
    )
    scaling = table(
        [
            "Guarded key's history (queries)",
            "Stream flagged",
            "One batch-1 `monitor.observe` ms",
            "Records in the key's current log",
        ],
        [
            (f"{m['history']:,}", "yes" if m["flagged"] else "no", f"{m['observe_ms']:.2f}", f"{m['log_records']:,}")
            for m in profile_extra["monitor"]
        ],
    )
    parts = [
        f"Model: the demo digits `small_cnn` ({EPOCHS} epochs, trained in {fixture['train_seconds']:.0f} s), uploaded "
        f"through `evaluations.services.model_artifact_upload` and scanned clean; deployed twice with the same rate "
        f"limits (burst {HIGH_LIMITS['burst']:,}/s, {HIGH_LIMITS['rate_per_minute']:,}/min: never reached), the "
        f"default telemetry sample rate (0.1) and the engine's default detector thresholds. Server: gunicorn, 2 sync "
        f"workers, DEBUG off, PostgreSQL and Redis (cache: rate limits and monitor state) on the same machine. "
        f"Detector arithmetic: {_detector_arithmetic()}. "
        f"Load: wrk (2 threads, {CONNECTIONS} connections, {seconds} s per run, {repeats} runs per deployment, "
        f"alternating in ABBA order: unguarded, guarded, guarded, unguarded, ...), batch-1 bodies of {540 - 300} "
        f"held-out digits, {KEYS_PER_RUN} fresh keys per run in round robin (each key's stream steps through the "
        f"digits, so no key repeats an input within a run; {per_key:.0f} queries per key per guarded run, median). "
        f"wrk, gunicorn, PostgreSQL and Redis share the {os.cpu_count()} cores. Monitor alerts raised on the "
        f"wrk keys of the guarded deployment during the load runs: {load_alerts}.",
        latency,
        "Guarded / unguarded p95 of each run pair, in run order (a pair is two neighbouring runs, one of each): "
        + ", ".join(f"{r:.2f}" for r in _pair_ratios(results))
        + ".",
        cpu,
        breakdown,
        f"One Redis round trip from Django (a cache read of a missing key) took {profile_extra['redis_ms']:.2f} ms "
        "(median of 200) during this run. The monitor shares the rate limiter's round trip: one Lua script appends "
        "this process's previous answers (compact records) to the key's log, charges the rate-limit windows and "
        "returns the records other processes logged since this process last read; the request's own answer is "
        "judged at once and appended by the process's next exchange, with what judging it measured (PRADA's "
        "distance, the edit and uncertainty votes). Each web process keeps its own detector per key and feeds it the "
        "log in order, replaying the other processes' answers from those measurements instead of measuring them "
        "again, so no state is locked or copied and each answer is measured once. A key's log starts a new epoch at "
        "2,000 records, flagged or not (`evaluations/serving/monitor.py`, "
        "`HISTORY_LIMIT`; a flag lives on in the key's enforced action in the database). The cost of one request "
        "against a key's history, measured in-process on synthetic streams (held-out digits with small noise; the "
        "longer ones are flagged by the edit monitor):",
        scaling,
    ]
    if detection.get("attackers"):
        parts += [
            "Detection over real HTTP (gunicorn as above): engine attackers through `HttpVictim` with their own key "
            "(evaluation queries through a second key, so the attacker key's count is attack queries only); "
            "'flagged at' is the `MonitorAlert.queries` of the attacker's key.",
            attack_table,
            benign_table,
        ]
    rate = detection.get("rate")
    if rate:
        parts += [
            table(
                [
                    "Rate limits at the deployment defaults",
                    "Queries",
                    "429 answers",
                    "Seconds waited",
                    "Wall seconds",
                    "Flagged at",
                ],
                [
                    (
                        f"random attacker, 10 per request ({rate['limits']})",
                        rate["queries"],
                        rate["rate_limited"],
                        f"{rate['waited']:.0f}",
                        f"{rate['seconds']:.0f}",
                        rate["flagged_at"] if rate["flagged_at"] is not None else "not flagged",
                    )
                ],
            )
        ]
    un, gu = _median_run(results["unguarded"]), _median_run(results["guarded"])
    ratio = gu["p95"] / un["p95"] if un["p95"] else float("inf")
    paired = median(_pair_ratios(results))
    errors = sum(r["errors"] for name in ("unguarded", "guarded") for r in results[name])
    bars = [
        (
            f"Guarded p95 <= {P95_RATIO_BAR} x unguarded p95 (16 connections, batch 1)",
            paired <= P95_RATIO_BAR and ratio <= P95_RATIO_BAR and errors == 0,
            f"median of the {repeats} run pairs' ratios {paired:.2f} x; ratio of the median p95s {gu['p95']:.1f} / "
            f"{un['p95']:.1f} ms = {ratio:.2f} x; non-2xx and socket errors in all runs: {errors}",
        )
    ]
    if detection.get("attackers"):
        worst = [a["flagged_at"] for a in detection["attackers"]]
        met = all(f is not None and f <= DETECTION_BAR for f in worst)
        bars.append(
            (
                f"HTTP extraction attacker flagged within {DETECTION_BAR} queries",
                met,
                "flagged at " + ", ".join(str(f) if f is not None else "never" for f in worst),
            )
        )
        fp = benign["flagged"] / benign["clients"]
        bars.append(
            (
                f"Benign false-positive rate <= {100 * BENIGN_FP_BAR:.0f}% over {BENIGN_CLIENTS} clients",
                fp <= BENIGN_FP_BAR and not benign["errors"],
                f"{benign['flagged']} of {benign['clients']} flagged ({100 * fp:.0f}%)",
            )
        )
    parts.append(reading(profile, results))
    parts.append(bars_table(bars))
    return "\n\n".join(parts)


def reading(profile: dict[str, Any], results: dict[str, list[dict[str, Any]]]) -> str:
    """What the latency figures say, with the run-to-run spread next to the guard's measured cost."""
    un, gu = profile["unguarded"], profile["guarded"]
    added = gu["total_ms"] - un["total_ms"]
    spread = {name: [r["p95"] for r in results[name]] for name in ("unguarded", "guarded")}
    overlap = min(spread["guarded"]) <= max(spread["unguarded"])
    single = {name: results[f"{name}-1"][0] for name in ("unguarded", "guarded")}
    rps = {name: _median_run(results[name])["rps"] for name in ("unguarded", "guarded")}
    monitor_ms = gu["stages"].get("monitor (detector; no round trip)", 0.0)
    policy_ms = gu["stages"].get("model + output policy", 0.0) - un["stages"].get("model + output policy", 0.0)
    return (
        f"Reading: in-process a guarded request took {gu['total_ms']:.1f} ms against {un['total_ms']:.1f} ms unguarded "
        f"({100 * added / un['total_ms']:+.0f}%); the guard's own stages are the monitor's {monitor_ms:.1f} ms and the "
        f"reverse sigmoid's {policy_ms:.2f} ms (the rest differs by noise). "
        f"Unqueued (1 connection) p50 is {single['guarded']['p50']:.1f} vs {single['unguarded']['p50']:.1f} ms "
        f"({single['guarded']['p50'] / single['unguarded']['p50']:.2f} x); at 16 connections the guarded median "
        f"throughput is {rps['guarded']:.1f} vs {rps['unguarded']:.1f} requests/s "
        f"({rps['guarded'] / rps['unguarded']:.2f} x), and a closed loop's latency follows throughput. The p95 of "
        f"single runs spans {min(spread['unguarded']):.0f}-{max(spread['unguarded']):.0f} ms unguarded and "
        f"{min(spread['guarded']):.0f}-{max(spread['guarded']):.0f} ms guarded"
        + (
            ": single runs overlap on this shared machine, so compare the in-process and 1-connection figures, "
            "which measure the guard's cost without queueing."
            if overlap
            else "."
        )
        + f" Rate limiting, paid by both deployments, costs {un['stages'].get(RATE_STAGE, 0.0):.1f} ms of "
        "the unguarded request: `ratelimit.consume` checks and charges the three windows (burst, minute, day) in one "
        "Lua script, one Redis round trip; on the guarded deployment the same script also appends this process's "
        "previous answers to the key's monitor log and reads what other processes logged, so the monitor adds no "
        "round trip, only the detector's own work and a longer script."
    )


if __name__ == "__main__":
    raise SystemExit(main())
