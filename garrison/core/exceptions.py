"""Domain exceptions shared by every app's services."""

from __future__ import annotations


class StateConflict(Exception):
    """The object's current state does not allow the operation (HTTP 409 in the API)."""
