"""Test settings: the real settings, with test defaults for what the environment leaves unset."""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "garrison-tests-only-not-a-secret")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")

from garrison.settings import *  # noqa: E402,F403
from garrison.settings import STORAGES  # noqa: E402

# Hashing speed is not under test; the real hasher is.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}

# Static files are served from the source folders in tests (no collectstatic run).
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
