"""Garrison: threat modeling and security governance for ML systems."""

from __future__ import annotations

from garrison.celery import app as celery_app

__all__ = ["celery_app"]
