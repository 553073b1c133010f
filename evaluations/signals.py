"""Signals the evaluations app sends so higher apps (KPIs, incidents) can react without being imported here."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after commit when a run reaches a final status. Arguments: ``run_id``, ``system_id``,
# ``kind``, ``status``.
run_finished = Signal()
