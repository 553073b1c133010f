"""Signals the serving guard sends so higher apps (incidents) can react without being imported here."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after commit when the extraction monitor flags a consumer key of a deployment. Arguments:
# ``alert_id``, ``deployment_id``, ``system_id``, ``open_incident`` (the deployment's setting).
deployment_alert_raised = Signal()
