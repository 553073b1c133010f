"""Signals the ingestion sub-app sends so higher apps (incidents) can react without being imported here."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after commit when the poison scan of a batch flagged batch records. Arguments: ``batch_id``,
# ``system_id``, ``n_flagged`` (records the poison scan flagged), ``open_incident`` (the policy's wish).
batch_poison_flagged = Signal()
