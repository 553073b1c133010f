"""Fixtures for the threat-model API tests."""

from __future__ import annotations

import pytest

from tests.threatmodel.api.builders import Content, build_version


@pytest.fixture
def content(teammate, system) -> Content:
    """A draft of ``system``'s threat model, written by ``teammate``, with one of everything."""
    return build_version(actor=teammate, system=system)
