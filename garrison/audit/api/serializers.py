"""API serializers for audit events."""

from __future__ import annotations

from rest_framework import serializers

from garrison.audit.models import AuditEvent
from garrison.core.api.serializers import InputSerializer


class AuditEventOutput(serializers.ModelSerializer):
    """One audit event."""

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor_label",
            "verb",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "request_id",
        ]
        read_only_fields = fields


class AuditEventFilterInput(InputSerializer):
    """Filters for the audit log."""

    actor = serializers.CharField(required=False, allow_blank=True, default="")
    verb = serializers.CharField(required=False, allow_blank=True, default="")
    object_type = serializers.CharField(required=False, allow_blank=True, default="")
    object_id = serializers.CharField(required=False, allow_blank=True, default="")
    since = serializers.DateField(required=False, allow_null=True, default=None)
    until = serializers.DateField(required=False, allow_null=True, default=None)
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)

    def validate(self, attrs: dict) -> dict:
        """``since`` must not be after ``until``."""
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"since": "'since' is after 'until'; swap them."})
        attrs.pop("page", None)
        attrs.pop("page_size", None)
        return attrs
