"""The web process never imports torch through the ingestion pages, API, services or task module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import sys, django
django.setup()
import garrison.urls, evaluations.ingestion.views, evaluations.ingestion.api.views
import evaluations.ingestion.services, evaluations.ingestion.tasks, evaluations.ingestion.presentation
from django.urls import reverse
reverse("ingestion:batch-list"); reverse("api:ingestion-batch-list")
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.") or m.startswith("sklearn"))
print("LOADED:", loaded[:5])
sys.exit(1 if loaded else 0)
"""


def test_importing_the_ingestion_web_modules_loads_neither_torch_nor_scikit_learn():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
