"""The web process never imports torch: URLconf, views, API views, services and tasks load without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, django
django.setup()
import garrison.urls, evaluations.views, evaluations.api.views, evaluations.services, evaluations.tasks
import evaluations.runners, evaluations.schedules, evaluations.configs
from evaluations.configs import available_kinds
from django.urls import reverse
reverse("evaluations:run-list")
available_kinds()
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("TORCH:", loaded[:5])
sys.exit(1 if loaded else 0)
"""


def test_importing_the_web_urlconf_and_evaluation_views_does_not_load_torch():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
