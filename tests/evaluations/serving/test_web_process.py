"""The serving pages and API load without torch; only a prediction imports it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import sys, django
django.setup()
import garrison.urls, evaluations.serving.views, evaluations.serving.api, evaluations.serving.services
import evaluations.serving.telemetry, evaluations.serving.selectors, incidents.receivers
from django.urls import reverse
reverse("serving:deployment-list")
reverse("serving:predict", kwargs={"system": "s", "deployment": "d"})
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("TORCH:", loaded[:5])
sys.exit(1 if loaded else 0)
"""


def test_importing_the_serving_views_api_and_services_does_not_load_torch():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
