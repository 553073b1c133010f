"""Signals the threatmodel app sends so that higher apps (KPIs) can react without being imported here."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after commit when what a system's approved threat model says may have changed
# (a version approved, evidence on a control changed). Arguments: ``system_id``, ``reason``.
threat_model_changed = Signal()
