"""Settings come from the environment; production refuses to start without a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], "
    "'name': str(settings.DATABASES['default']['NAME']), 'broker': settings.CELERY_BROKER_URL, "
    "'secure_cookie': settings.SESSION_COOKIE_SECURE, 'csrf_secure': settings.CSRF_COOKIE_SECURE, "
    "'hsts': settings.SECURE_HSTS_SECONDS, 'debug': settings.DEBUG, 'media': str(settings.MEDIA_ROOT)}))"
)

# Variables the test run itself may set (tests/settings.py, .ci/run); each probe starts without them.
GARRISON_VARIABLES = {
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "MEDIA_ROOT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_SSL_REDIRECT",
}


def run_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in GARRISON_VARIABLES}
    clean.update({"DJANGO_SETTINGS_MODULE": "garrison.settings", "GARRISON_VAR_DIR": str(tmp_path), **env})
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_production_without_secret_key_fails_naming_the_variable(tmp_path):
    result = run_settings(tmp_path, DEBUG="0")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_embedded_default_is_sqlite_under_var_and_a_filesystem_broker(tmp_path):
    result = run_settings(tmp_path, DEBUG="1")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["name"].startswith(str(tmp_path))
    assert values["broker"] == "filesystem://"


def test_debug_generates_a_development_key_once_and_keeps_it(tmp_path):
    run_settings(tmp_path, DEBUG="1")
    key = (tmp_path / "dev-secret-key").read_text()
    run_settings(tmp_path, DEBUG="1")
    assert (tmp_path / "dev-secret-key").read_text() == key
    assert oct((tmp_path / "dev-secret-key").stat().st_mode)[-3:] == "600"


def test_environment_switches_database_broker_and_media(tmp_path):
    result = run_settings(
        tmp_path,
        SECRET_KEY="x" * 50,
        DATABASE_URL="postgres://garrison:pw@db.internal:5432/garrison",
        CELERY_BROKER_URL="amqp://guest:guest@rabbit:5672//",
        MEDIA_ROOT=str(tmp_path / "blobs"),
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["name"] == "garrison"
    assert values["broker"] == "amqp://guest:guest@rabbit:5672//"
    assert values["media"] == str(tmp_path / "blobs")


def test_production_uses_secure_cookies_and_hsts(tmp_path):
    result = run_settings(tmp_path, SECRET_KEY="x" * 50, DEBUG="0")
    values = json.loads(result.stdout)
    assert values["debug"] is False
    assert values["secure_cookie"] is True and values["csrf_secure"] is True
    assert values["hsts"] >= 31536000


def test_a_non_numeric_integer_setting_is_named(tmp_path):
    result = run_settings(tmp_path, SECRET_KEY="x" * 50, LOGIN_FAILURE_LIMIT="many")
    assert result.returncode != 0
    assert "LOGIN_FAILURE_LIMIT must be an integer" in result.stderr
