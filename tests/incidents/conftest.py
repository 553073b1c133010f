"""Fixtures for incident tests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import services


@pytest.fixture
def incident(teammate, system):
    """An open incident on ``system`` detected an hour ago."""
    return services.incident_open(
        actor=teammate,
        team=system.team,
        title="Backdoored spam filter",
        systems=[system],
        severity="high",
        detection_source="evaluation_run",
        detected_at=timezone.now() - timedelta(hours=1),
    )
