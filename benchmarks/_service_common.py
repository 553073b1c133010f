"""Shared plumbing of the service benchmarks: a bench database, the environment, statistics and the doc file.

The service benchmarks (``benchmarks.service_*``) measure Garrison as a running service (web
server, PostgreSQL, Redis, Celery workers), not the engine. Each writes its figures as a
Markdown table to stdout and refreshes its own section of ``docs/benchmarks-service.md``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks-service.md"
PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")

DOC_HEADER = """# Service benchmarks

Garrison measured as a running service: the web server under load, PDF rendering, and
evaluation jobs through real Celery workers. Engine benchmarks against peer libraries are in
`docs/benchmarks.md`. Each section below is written by its module
(`python -m benchmarks.service_<name>`), which replaces only its own section; the date, the
machine and its load average at the time of the run are part of each section, because the
figures depend on them.

"""


def database_url(name: str) -> str:
    """The URL of a bench database on the local PostgreSQL (trust auth)."""
    return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        capture_output=True,
        text=True,
    )


def fresh_database(name: str) -> str:
    """DROP and CREATE a bench database; returns its URL. Only names starting with ``garrison_bench``."""
    if not re.fullmatch(r"garrison_bench[a-z0-9_]*", name):
        raise ValueError(f"Refusing to drop '{name}': bench databases are named garrison_bench*.")
    _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _psql(f"CREATE DATABASE {name}")
    return database_url(name)


def service_env(db_url: str, **extra: str) -> dict[str, str]:
    """Production-like settings for a bench process: DEBUG off, plain HTTP on loopback."""
    env = {
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "DATABASE_URL": db_url,
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def setup_django(env: dict[str, str]) -> None:
    """Apply ``env`` to this process and set Django up (before any model import)."""
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "garrison.settings"
    import django

    django.setup()


def manage(env: dict[str, str], *args: str) -> None:
    """Run ``manage.py`` with ``env`` in a subprocess (quietly; raises with its output on failure)."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env, "DJANGO_SETTINGS_MODULE": "garrison.settings"},
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


STATIC_ROOT = Path(os.environ.get("BENCH_STATIC_ROOT", Path(tempfile.gettempdir()) / "garrison-bench-static"))


def collect_static(env: dict[str, str]) -> None:
    """collectstatic into a folder the bench runs share (DEBUG off serves the hashed manifest names)."""
    env["STATIC_ROOT"] = str(STATIC_ROOT)
    manage(env, "collectstatic", "--noinput")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 60.0) -> None:
    """Wait until something listens on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as text."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def median(values: Sequence[float]) -> float:
    """The median."""
    return float(statistics.median(values))


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; the first column is left-aligned, the rest right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def bars_table(bars: Sequence[tuple[str, bool, str]]) -> str:
    """The acceptance bars: (bar, met, measured)."""
    return table(["Bar", "Met", "Measured"], [(name, "yes" if met else "**no**", detail) for name, met, detail in bars])


def section(name: str, title: str, body: str, *, command: str, load_before: str) -> str:
    """A doc section with its provenance: date, machine, load averages, the command."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<!-- service-bench:{name} -->\n"
        f"## {title}\n\n"
        f"Measured {now} on {cores()} cores; load average (1/5/15 min) {load_before} at the start and "
        f"{load_average()} at the end (the machine was shared with other jobs). Command: `{command}`.\n\n"
        f"{body.strip()}\n"
        f"<!-- /service-bench:{name} -->\n"
    )


def write_section(name: str, text: str) -> None:
    """Replace (or append) this benchmark's section in docs/benchmarks-service.md."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    current = DOC.read_text() if DOC.exists() else DOC_HEADER
    tag = re.escape(name)
    pattern = re.compile(rf"<!-- service-bench:{tag} -->.*?<!-- /service-bench:{tag} -->\n?", re.S)
    if pattern.search(current):
        current = pattern.sub(lambda _: text, current)
    else:
        current = current.rstrip("\n") + "\n\n" + text
    DOC.write_text(current)


def command_line(module: str, quick: bool) -> str:
    """The command that reproduces a run."""
    return f".venv/bin/python -m benchmarks.{module}" + (" --quick" if quick else "")
