"""API serializers for incidents and reports."""

from __future__ import annotations

from rest_framework import serializers

from garrison.core.api.serializers import InputSerializer
from incidents.models import DetectionSource, IncidentStatus, ReportKind, Severity


class TimelineOutput(serializers.Serializer):
    """A timeline entry."""

    occurred_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor.username", default="system")
    note = serializers.CharField()
    atlas_tactic = serializers.CharField()
    atlas_technique = serializers.CharField()


class ActionOutput(serializers.Serializer):
    """A remediation action."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    owner = serializers.CharField(source="owner.username", default=None)
    due_date = serializers.DateField(allow_null=True)
    status = serializers.CharField()
    verification = serializers.CharField()
    run = serializers.IntegerField(source="run_id", allow_null=True)


class EvidenceOutput(serializers.Serializer):
    """A piece of evidence."""

    kind = serializers.CharField()
    reference = serializers.CharField()
    description = serializers.CharField()
    metrics = serializers.JSONField()


class IncidentOutput(serializers.Serializer):
    """An incident."""

    id = serializers.IntegerField()
    number = serializers.IntegerField()
    team = serializers.CharField(source="team.slug")
    title = serializers.CharField()
    summary = serializers.CharField()
    severity = serializers.CharField()
    status = serializers.CharField()
    detection_source = serializers.CharField()
    detected_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    systems = serializers.SerializerMethodField()
    owner = serializers.CharField(source="owner.username", default=None)
    root_cause = serializers.CharField()
    lessons_learned = serializers.CharField()

    def get_systems(self, incident) -> list[int]:  # noqa: ANN001
        """Ids of the affected systems."""
        return [system.pk for system in incident.systems.all()]


class IncidentDetailOutput(IncidentOutput):
    """An incident with its timeline, evidence and actions."""

    timeline = TimelineOutput(many=True)
    evidence = EvidenceOutput(many=True)
    actions = ActionOutput(many=True)


class IncidentCreateInput(InputSerializer):
    """Open an incident."""

    systems = serializers.ListField(child=serializers.IntegerField(), min_length=1)
    title = serializers.CharField(max_length=200)
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.MEDIUM)
    detection_source = serializers.ChoiceField(choices=DetectionSource.choices, default="manual_report")
    detected_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    summary = serializers.CharField(required=False, allow_blank=True, default="")


class TransitionInput(InputSerializer):
    """Move an incident to a stage."""

    to = serializers.ChoiceField(choices=IncidentStatus.choices)


class TimelineInput(InputSerializer):
    """Add a timeline entry."""

    occurred_at = serializers.DateTimeField()
    note = serializers.CharField()
    atlas_tactic = serializers.CharField(required=False, allow_blank=True, default="")
    atlas_technique = serializers.CharField(required=False, allow_blank=True, default="")


class ReportInput(InputSerializer):
    """Request an audit report."""

    kind = serializers.ChoiceField(choices=ReportKind.choices)
    system = serializers.IntegerField(required=False, allow_null=True, default=None)


class ReportOutput(serializers.Serializer):
    """A stored report."""

    id = serializers.IntegerField()
    kind = serializers.CharField()
    system = serializers.IntegerField(source="system_id", allow_null=True)
    status = serializers.CharField()
    progress = serializers.FloatField()
    stage = serializers.CharField()
    sha256 = serializers.CharField()
    document_id = serializers.CharField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
