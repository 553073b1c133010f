"""Audit PDF rendering: one large system's audit, and the portfolio audit of 100 systems, with peak memory.

Builds a fresh PostgreSQL database: one large system (an approved threat model with 200 accepted
threats and 50 controls, 30 evaluation runs, 12 KPIs with a trend each, two incidents) and 99 more
systems of ordinary size (20 threats, 8 controls, 5 runs, 12 KPIs). Each measurement renders in a
fresh child process (so its peak RSS is its own): the system audit twice (cold: the first render
in the process, with WeasyPrint's fonts and templates still to load; warm: the second, as in a
running worker), and the portfolio audit once. Three child processes per measurement (one with
``--quick``); the table shows each and the median. Bars (issue "Incidents and reports"): system
audit <= 3 s, portfolio audit of 100 systems <= 30 s.

    .venv/bin/python -m benchmarks.service_pdfs [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks._service_common import (
    ROOT,
    bars_table,
    collect_static,
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

NAME = "service_pdfs"
DB_NAME = "garrison_bench_pdfs"
SYSTEMS = 100
BIG = {"boundaries": 3, "components": 10, "flows": 12, "threats": 200, "controls": 50, "runs": 30, "points": 24}
SMALL = {"boundaries": 2, "components": 5, "flows": 4, "threats": 20, "controls": 8, "runs": 5, "points": 6}
TREND_KPIS = 12
SYSTEM_BAR_S = 3.0
PORTFOLIO_BAR_S = 30.0
STRIDE = [
    "spoofing",
    "tampering",
    "repudiation",
    "information_disclosure",
    "denial_of_service",
    "elevation_of_privilege",
]


def _threat_model(system: Any, shape: dict[str, int], user: Any, approver: Any, rng: random.Random) -> None:
    """An approved threat model of the given shape, created row by row in bulk."""
    from django.utils import timezone

    from threatmodel.catalog import COMPONENT_TYPES
    from threatmodel.models import (
        Component,
        Control,
        DataFlow,
        Threat,
        ThreatModel,
        ThreatModelVersion,
        TrustBoundary,
    )

    now = timezone.now()
    model = ThreatModel.objects.create(system=system, title=f"{system.name} threat model")
    version = ThreatModelVersion.objects.create(
        threat_model=model,
        number=1,
        status="approved",
        author=user,
        submitted_by=user,
        submitted_at=now,
        reviewed_by=approver,
        reviewed_at=now,
        summary="Benchmark threat model.",
    )
    boundaries = TrustBoundary.objects.bulk_create(
        [TrustBoundary(version=version, name=f"Zone {i}") for i in range(shape["boundaries"])]
    )
    types = sorted(COMPONENT_TYPES)
    components = Component.objects.bulk_create(
        [
            Component(
                version=version,
                name=f"Component {i}",
                component_type=types[i % len(types)],
                description="A part of the ML system.",
                boundary=boundaries[i % len(boundaries)],
            )
            for i in range(shape["components"])
        ]
    )
    flows = DataFlow.objects.bulk_create(
        [
            DataFlow(
                version=version,
                source=components[i % len(components)],
                target=components[(i + 1) % len(components)],
                data=f"records {i}",
                protocol="HTTPS",
                authenticated=i % 3 != 0,
            )
            for i in range(shape["flows"])
        ]
    )
    threats = Threat.objects.bulk_create(
        [
            Threat(
                version=version,
                catalog_key="",
                title=f"Threat {i}: adversarial manipulation of component {i % len(components)}",
                description="An attacker crafts inputs or data to change the model's behaviour. " * 3,
                stride=STRIDE[i % len(STRIDE)],
                component=components[i % len(components)] if i % 4 else None,
                flow=None if i % 4 else flows[i % len(flows)],
                atlas_techniques=["AML.T0043", "AML.T0015"][: 1 + i % 2],
                owasp_ml=["ML01"],
                suggested_mitigations=["AML.M0002"],
                likelihood=1 + rng.randrange(5),
                impact=1 + rng.randrange(5),
                status="accepted" if i % 10 else "dismissed",
                justification="" if i % 10 else "Not exposed.",
            )
            for i in range(shape["threats"])
        ]
    )
    controls = Control.objects.bulk_create(
        [
            Control(
                version=version,
                name=f"Control {i}",
                description="Reduces the likelihood or the impact of the linked threats.",
                owner=user,
                due_date=(now + timedelta(days=30 - i)).date(),
                status=["planned", "implemented", "verified"][i % 3],
            )
            for i in range(shape["controls"])
        ]
    )
    through = Control.threats.through
    through.objects.bulk_create(
        [
            through(control_id=control.pk, threat_id=threats[(4 * c + k) % len(threats)].pk)
            for c, control in enumerate(controls)
            for k in range(4)
        ]
    )


def _evidence(system: Any, shape: dict[str, int], rng: random.Random, blob: Any) -> None:
    """Evaluation runs and KPI trends."""
    from django.utils import timezone

    from evaluations.models import EvaluationRun, ModelArtifact, RunKind, RunStatus, ScanStatus
    from kpis.catalog import KPIS
    from kpis.models import CurrentValue, Measurement

    now = timezone.now()
    model = ModelArtifact.objects.create(
        system=system,
        version=1,
        format="safetensors",
        architecture="small_cnn",
        input_shape=[1, 8, 8],
        input_bounds=[0, 1],
        class_names=[str(i) for i in range(10)],
        blob=blob,
        scan_status=ScanStatus.CLEAN,
        scan_report={"verdict": "clean", "findings": []},
    )
    runs = []
    for i in range(shape["runs"]):
        robust = round(rng.uniform(0.3, 0.8), 3)
        finished = now - timedelta(days=3 * i)
        runs.append(
            EvaluationRun(
                system=system,
                kind=RunKind.ROBUSTNESS if i % 3 else RunKind.MODEL_SCAN,
                model_artifact=model,
                status=RunStatus.SUCCEEDED,
                progress=1.0,
                metrics={
                    "attack": "pgd",
                    "norm": "linf",
                    "epsilons": [0.0, 0.05, 0.1, 0.2],
                    "clean_accuracy": 0.95,
                    "robust_accuracy": [0.95, (0.95 + robust) / 2, robust, robust / 2],
                }
                if i % 3
                else {"verdict": "clean"},
                reliable=True if i % 3 else None,
                queued_at=finished - timedelta(minutes=5),
                started_at=finished - timedelta(minutes=4),
                finished_at=finished,
            )
        )
    EvaluationRun.objects.bulk_create(runs)
    measurements = [
        Measurement(
            system=system,
            kpi=definition.key,
            value=round(rng.uniform(0.0, 1.0), 3) if definition.unit == "ratio" else float(rng.randint(0, 40)),
            measured_at=now - timedelta(days=7 * (shape["points"] - j)),
            trigger="bench",
            reliable=True,
        )
        for definition in KPIS[:TREND_KPIS]
        for j in range(shape["points"])
    ]
    Measurement.objects.bulk_create(measurements)
    latest = {m.kpi: m for m in measurements}
    CurrentValue.objects.bulk_create(
        [
            CurrentValue(
                system=system, kpi=m.kpi, measurement=m, value=m.value, reliable=True, measured_at=m.measured_at
            )
            for m in latest.values()
        ]
    )


def seed() -> dict[str, Any]:
    """The large system and the portfolio; returns their ids."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from evaluations.models import Blob
    from garrison.accounts.models import Membership, Team
    from garrison.accounts.roles import Role
    from incidents import services as incidents
    from threatmodel.models import System

    rng = random.Random(0)  # noqa: S311 - synthetic data, not cryptography
    users = get_user_model().objects
    with transaction.atomic():
        user = users.create_user("bench", password=None)
        approver = users.create_user("bench-approver", password=None)
        team = Team.objects.create(name="Bench team", slug="bench-team")
        Membership.objects.create(user=user, team=team, role=Role.ADMIN)
        Membership.objects.create(user=approver, team=team, role=Role.APPROVER)
        blob = Blob.objects.create(sha256="c" * 64, size=10)
        systems = System.objects.bulk_create(
            [
                System(team=team, name=f"Bench system {i:03d}", slug=f"system-{i:03d}", criticality_tier=1 + i % 4)
                for i in range(SYSTEMS)
            ]
        )
        for index, system in enumerate(systems):
            shape = BIG if index == 0 else SMALL
            _threat_model(system, shape, user, approver, rng)
            _evidence(system, shape, rng, blob)
    for n in range(2):
        incidents.incident_open(
            actor=user,
            team=team,
            title=f"Suspected extraction {n}",
            systems=[systems[0]],
            severity="high",
            detection_source="evaluation_run",
            detected_at=timezone.now() - timedelta(days=n + 1),
        )
    return {"big": systems[0].pk, "systems": [s.pk for s in systems]}


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _pages(content: bytes) -> int | str:
    if not shutil.which("pdfinfo"):
        return "?"
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(content)
        handle.flush()
        info = subprocess.run(["pdfinfo", handle.name], capture_output=True, text=True).stdout
    match = re.search(r"^Pages:\s+(\d+)", info, re.M)
    return int(match.group(1)) if match else "?"


def child(kind: str, ids: list[int]) -> dict[str, Any]:
    """In a fresh process: render and report seconds, pages, size and memory.

    ``kind`` ending in ``-asis`` renders with the production static storage as configured; otherwise
    the plain static storage is used, so the print stylesheet loads (see the note in the doc).
    """
    if kind.endswith("-asis"):
        return _child(kind.removesuffix("-asis"), ids)
    from django.test import override_settings

    from garrison import settings as project

    storages = {**project.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    with override_settings(STORAGES=storages):
        return _child(kind, ids)


def _child(kind: str, ids: list[int]) -> dict[str, Any]:
    from incidents.audit_reports import render_portfolio_audit, render_system_audit
    from threatmodel.models import System

    marks: dict[float, float] = {}

    def progress(fraction: float, stage: str) -> None:
        marks[fraction] = time.perf_counter()

    systems = list(System.objects.filter(pk__in=ids).select_related("team").order_by("name"))
    baseline = _rss_kib()
    out: dict[str, Any] = {"baseline_rss_mib": baseline / 1024}
    if kind == "system":
        for label in ("cold", "warm"):
            started = time.perf_counter()
            marks.clear()
            rendered = render_system_audit(systems[0], progress=progress)
            out[f"{label}_s"] = time.perf_counter() - started
        out["gather_s"] = marks[0.6] - started
        out["pdf_s"] = marks[1.0] - marks[0.6]
    else:
        started = time.perf_counter()
        rendered = render_portfolio_audit(systems, title="Portfolio audit (benchmark)", progress=progress)
        out["cold_s"] = time.perf_counter() - started
        out["gather_s"] = marks[0.85] - started
        out["pdf_s"] = marks[1.0] - marks[0.85]
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["pdf_kib"] = len(rendered.content) / 1024
    out["pages"] = _pages(rendered.content)
    out["refused"] = list(rendered.refused_urls)
    return out


def run_child(env: dict[str, str], kind: str, ids: list[int]) -> dict[str, Any]:
    """Run ``child`` in a new interpreter; returns its JSON plus the load average after it."""
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{NAME}", "--child", kind, "--ids", ",".join(map(str, ids))],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode:
        raise RuntimeError(f"child {kind} failed:\n{result.stdout}\n{result.stderr[-4000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    data["load"] = load_average()
    return data


def static_note(results: dict[str, list[dict[str, Any]]], asis: dict[str, Any]) -> str:
    """What the production static configuration does to the PDFs' stylesheet."""
    refused = sorted({url for runs in results.values() for r in runs for url in r["refused"]})
    styled = "with their print stylesheet" if not refused else f"but some URLs were refused: {refused}"
    if not asis["refused"]:
        return f"The timed PDFs rendered {styled}; the production configuration loads it too."
    return (
        f"Finding: with DEBUG off the static storage is `CompressedManifestStaticFilesStorage`, so "
        f"`{{% static 'css/report.css' %}}` in `templates/reports/_base.html` becomes a hashed name "
        f"that `garrison.pdf.LocalOnlyFetcher` (which looks files up with `finders.find`, i.e. in the "
        f"source folders) cannot find, and refuses: {', '.join(f'`{u}`' for u in asis['refused'])}. "
        f"Every audit PDF rendered in production is therefore unstyled (WeasyPrint logs an error and "
        f"carries on). The timings above are of the styled PDF ({styled}): the benchmark renders with "
        f"the plain static storage. As configured, the same system audit renders unstyled in "
        f"{asis['cold_s']:.2f} s cold / {asis['warm_s']:.2f} s warm, {asis['pages']} pages."
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and refresh the doc section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one child process per measurement instead of three")
    parser.add_argument("--reuse", action="store_true", help="reuse the seeded bench database of an earlier run")
    parser.add_argument("--child", choices=["system", "portfolio", "system-asis"], help=argparse.SUPPRESS)
    parser.add_argument("--ids", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        setup_django({})  # the parent passed the environment
        print(json.dumps(child(args.child, [int(i) for i in args.ids.split(",")])))
        return 0

    load_before = load_average()
    work = Path(tempfile.mkdtemp(prefix="garrison-bench-pdfs-"))
    env = service_env(
        "",
        MEDIA_ROOT=str(work / "media"),
        GARRISON_VAR_DIR=str(work / "var"),
    )
    from benchmarks._service_common import database_url

    if args.reuse:
        env["DATABASE_URL"] = database_url(DB_NAME)
    else:
        env["DATABASE_URL"] = fresh_database(DB_NAME)
        print(f"database {DB_NAME}: migrating and seeding ...", file=sys.stderr)
        manage(env, "migrate", "--noinput")
    collect_static(env)
    setup_django(env)
    from threatmodel.models import System

    if not args.reuse:
        started = time.perf_counter()
        seed()
        print(f"seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    ids = list(System.objects.order_by("name").values_list("pk", flat=True))
    big = ids[0]
    from incidents.audit_reports import system_section

    charts = len(system_section(System.objects.get(pk=big))["trend_charts"])
    from django.db import connections

    connections.close_all()
    repeats = 1 if args.quick else 3
    results: dict[str, list[dict[str, Any]]] = {"system": [], "portfolio": []}
    for repeat in range(repeats):
        for kind, target in (("system", [big]), ("portfolio", ids)):
            print(f"run {repeat + 1}/{repeats}: {kind} audit", file=sys.stderr)
            results[kind].append(run_child(env, kind, target))
    asis = run_child(env, "system-asis", [big])
    shutil.rmtree(work, ignore_errors=True)

    rows = []
    labels = (("system", "System audit (1 large system)"), ("portfolio", f"Portfolio audit ({SYSTEMS} systems)"))
    for kind, label in labels:
        for index, r in enumerate(results[kind], 1):
            rows.append(
                (
                    f"{label}, run {index}",
                    f"{r['cold_s']:.2f}",
                    f"{r['warm_s']:.2f}" if "warm_s" in r else "",
                    f"{r['gather_s']:.2f}",
                    f"{r['pdf_s']:.2f}",
                    r["pages"],
                    f"{r['pdf_kib']:.0f}",
                    f"{r['baseline_rss_mib']:.0f}",
                    f"{r['peak_rss_mib']:.0f}",
                    r["load"],
                )
            )
        runs = results[kind]
        rows.append(
            (
                f"**{label}, median of {len(runs)}**",
                f"**{median([r['cold_s'] for r in runs]):.2f}**",
                f"**{median([r['warm_s'] for r in runs]):.2f}**" if kind == "system" else "",
                f"{median([r['gather_s'] for r in runs]):.2f}",
                f"{median([r['pdf_s'] for r in runs]):.2f}",
                runs[0]["pages"],
                f"{median([r['pdf_kib'] for r in runs]):.0f}",
                f"{median([r['baseline_rss_mib'] for r in runs]):.0f}",
                f"**{median([r['peak_rss_mib'] for r in runs]):.0f}**",
                "",
            )
        )
    system_cold = median([r["cold_s"] for r in results["system"]])
    system_warm = median([r["warm_s"] for r in results["system"]])
    portfolio_s = median([r["cold_s"] for r in results["portfolio"]])
    portfolio_peak = median([r["peak_rss_mib"] for r in results["portfolio"]])
    bars = [
        (
            f"System audit <= {SYSTEM_BAR_S:.0f} s (first render in a process)",
            system_cold <= SYSTEM_BAR_S,
            f"{system_cold:.2f} s",
        ),
        (
            f"System audit <= {SYSTEM_BAR_S:.0f} s (warm worker: second render)",
            system_warm <= SYSTEM_BAR_S,
            f"{system_warm:.2f} s",
        ),
        (
            f"Portfolio audit of {SYSTEMS} systems <= {PORTFOLIO_BAR_S:.0f} s",
            portfolio_s <= PORTFOLIO_BAR_S,
            f"{portfolio_s:.1f} s, peak RSS {portfolio_peak:.0f} MiB",
        ),
    ]
    body = "\n\n".join(
        [
            f"Data on PostgreSQL (`{DB_NAME}`): the large system has an approved threat model with "
            f"{BIG['boundaries']} trust boundaries, {BIG['components']} components, {BIG['flows']} data flows, "
            f"{BIG['threats']} threats (90% accepted) and {BIG['controls']} controls (4 threats each), "
            f"{BIG['runs']} evaluation runs, {TREND_KPIS} KPIs with {BIG['points']} weekly measurements each "
            f"and 2 incidents (opening them records governance KPIs too: {charts} trend charts in all). "
            f"The portfolio audit covers it and {SYSTEMS - 1} "
            f"systems with {SMALL['threats']} threats, {SMALL['controls']} controls, {SMALL['runs']} runs and "
            f"{TREND_KPIS} KPIs each (the portfolio audit draws no trend charts). Timed: "
            f"`incidents.audit_reports.render_system_audit` and `render_portfolio_audit` (gathering, the "
            f"Graphviz data-flow diagrams, WeasyPrint), each measurement in a fresh process; peak memory is "
            f"that process's maximum RSS (`getrusage`), the baseline its RSS after Django start-up and "
            f"loading the systems. 'Gather' is the time until the PDF rendering starts (queries, Python, "
            f"SVG charts, Graphviz), 'WeasyPrint' the `render_pdf` call (for the system audit: of the "
            f"warm render).",
            table(
                [
                    "Report",
                    "Cold s",
                    "Warm s",
                    "Gather s",
                    "WeasyPrint s",
                    "Pages",
                    "PDF KiB",
                    "Baseline RSS MiB",
                    "Peak RSS MiB",
                    "Load after",
                ],
                rows,
            ),
            bars_table(bars),
            static_note(results, asis),
        ]
    )
    print(body)
    write_section(
        NAME,
        section(NAME, "Audit PDF rendering", body, command=command_line(NAME, args.quick), load_before=load_before),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
