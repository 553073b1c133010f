"""AuditEvent: who did what to which object, with before/after values.

Rows are append-only. The ORM refuses updates and deletes (instance and queryset),
the admin and API offer neither, and on PostgreSQL a trigger refuses them in the
database itself.
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class AuditImmutableError(Exception):
    """Raised on any attempt to change or delete an audit row."""


class AuditEventQuerySet(models.QuerySet):
    """A queryset that cannot update or delete."""

    def update(self, **kwargs: object) -> int:
        """Refuse: audit rows are append-only."""
        raise AuditImmutableError("Audit events are append-only; they cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        """Refuse: audit rows are append-only."""
        raise AuditImmutableError("Audit events are append-only; they cannot be deleted.")

    def bulk_update(self, objs: object, fields: object, batch_size: int | None = None) -> int:
        """Refuse: audit rows are append-only."""
        raise AuditImmutableError("Audit events are append-only; they cannot be updated.")


class AuditEvent(models.Model):
    """One audited change."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, null=True, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_token = models.ForeignKey(
        "accounts.ApiToken", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200, help_text="Who acted, as shown at the time.")
    verb = models.CharField(max_length=80, db_index=True, help_text="e.g. system.create")
    object_type = models.CharField(max_length=80, db_index=True, help_text="app_label.model")
    object_id = models.CharField(max_length=64, db_index=True)
    object_repr = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    request_id = models.CharField(max_length=64, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["team", "-created_at"], name="audit_team_time")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.verb} {self.object_repr}"

    def save(self, *args: object, **kwargs: object) -> None:
        """Insert only: saving an existing row is refused."""
        if self.pk is not None and not self._state.adding:
            raise AuditImmutableError("Audit events are append-only; they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        """Refuse: audit rows are append-only."""
        raise AuditImmutableError("Audit events are append-only; they cannot be deleted.")
