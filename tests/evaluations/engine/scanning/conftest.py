"""Fixtures for the model-file scanner tests: a canary path that a payload would create if it ran."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Path]:
    """Path that malicious payloads try to create; every test using it checks it never appears."""
    path = tmp_path / "CANARY"
    yield path
    assert not path.exists(), "a payload ran: the scanner executed part of the file"
