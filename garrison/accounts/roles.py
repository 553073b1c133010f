"""Roles and what each may do.

People hold a role in a team (viewer < editor < approver < admin); API tokens hold
a token role (``ci``, ``viewer``, ``editor``). Code asks for a capability, never
for a role name, so the table below is the whole permission policy.
"""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    """A person's role in a team."""

    VIEWER = "viewer", "Viewer"
    EDITOR = "editor", "Editor"
    APPROVER = "approver", "Approver"
    ADMIN = "admin", "Admin"


class TokenRole(models.TextChoices):
    """An API token's role in its team."""

    CI = "ci", "CI pipeline"
    VIEWER = "viewer", "Read-only"
    EDITOR = "editor", "Editor (automation)"


class Capability(models.TextChoices):
    """Something a principal may do inside a team."""

    VIEW = "view", "Read the team's systems, models, runs, KPIs and incidents"
    EDIT = "edit", "Create and change systems, threat models, controls and incidents"
    APPROVE = "approve", "Approve threat-model versions, thresholds and risk acceptances"
    ADMIN = "admin", "Manage members and API tokens"
    SUBMIT_EVALUATIONS = "submit_evaluations", "Upload models and submit evaluation runs"
    GATE = "gate", "Call the CI/CD security gate"
    VIEW_AUDIT = "view_audit", "Read the team's audit log"
    PUSH_DATA = "push_data", "Push training-data batches into quarantine"
    APPROVE_DATA = "approve_data", "Govern datasets and accept or reject quarantined training data"
    DEPLOY = "deploy", "Deploy models behind the guarded prediction API and manage their consumer keys"


_VIEWER = {Capability.VIEW, Capability.VIEW_AUDIT}
_EDITOR = _VIEWER | {Capability.EDIT, Capability.SUBMIT_EVALUATIONS, Capability.GATE}
_EDITOR |= {Capability.DEPLOY}  # editors deploy models behind the guarded API (evaluations.serving)
_EDITOR |= {Capability.PUSH_DATA}
_APPROVER = _EDITOR | {Capability.APPROVE, Capability.APPROVE_DATA}
_ADMIN = _APPROVER | {Capability.ADMIN}

ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    Role.VIEWER: frozenset(_VIEWER),
    Role.EDITOR: frozenset(_EDITOR),
    Role.APPROVER: frozenset(_APPROVER),
    Role.ADMIN: frozenset(_ADMIN),
}

# A CI pipeline reads, uploads candidate models, submits evaluations and asks the gate.
TOKEN_ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    TokenRole.CI: frozenset({Capability.VIEW, Capability.SUBMIT_EVALUATIONS, Capability.GATE}),
    TokenRole.VIEWER: frozenset({Capability.VIEW}),
    TokenRole.EDITOR: frozenset({Capability.VIEW, Capability.EDIT, Capability.SUBMIT_EVALUATIONS}),
}
# Training pipelines push data batches into quarantine with an editor (automation) token; only people decide on them.
TOKEN_ROLE_CAPABILITIES[TokenRole.EDITOR] |= {Capability.PUSH_DATA}


def roles_with(capability: str) -> list[str]:
    """The person roles that grant ``capability``."""
    return [role for role, caps in ROLE_CAPABILITIES.items() if capability in caps]


def token_roles_with(capability: str) -> list[str]:
    """The token roles that grant ``capability``."""
    return [role for role, caps in TOKEN_ROLE_CAPABILITIES.items() if capability in caps]
