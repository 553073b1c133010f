"""API serializers for KPIs and the gate."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from garrison.core.api.serializers import InputSerializer
from kpis.catalog import BY_KEY


class GateInput(InputSerializer):
    """Ask the gate about a model version."""

    system = serializers.CharField(help_text="The system's id, or 'team/system' slugs.")
    model_version = serializers.IntegerField(min_value=1)
    format = serializers.ChoiceField(choices=["json", "junit", "sarif"], default="json", required=False)


class ReasonOutput(serializers.Serializer):
    """One gate check."""

    check = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["pass", "warn", "fail"])
    message = serializers.CharField()
    kpi = serializers.CharField(allow_blank=True)
    value = serializers.FloatField(allow_null=True)


_DATETIME = serializers.DateTimeField()


class GateDecisionOutput(serializers.Serializer):
    """The gate's answer."""

    id = serializers.IntegerField()
    system = serializers.CharField(source="system.slug")
    model_version = serializers.IntegerField()
    decision = serializers.CharField()
    exit_code = serializers.IntegerField()
    reasons = ReasonOutput(many=True)
    created_at = serializers.DateTimeField()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        """The fields above, written directly: CI pipelines call the gate often, and DRF's field-by-field
        rendering was a tenth of a gate call. (The reasons are stored in the output's form already;
        tests compare this with the field-by-field rendering.)"""
        return {
            "id": instance.id,
            "system": instance.system.slug,
            "model_version": instance.model_version,
            "decision": instance.decision,
            "exit_code": instance.exit_code,
            "reasons": [
                {
                    "check": r["check"],
                    "outcome": r["outcome"],
                    "message": r["message"],
                    "kpi": r["kpi"],
                    "value": None if r["value"] is None else float(r["value"]),
                }
                for r in instance.reasons
            ],
            "created_at": _DATETIME.to_representation(instance.created_at),
        }


class CellOutput(serializers.Serializer):
    """One KPI of a system."""

    kpi = serializers.CharField(source="definition.key")
    name = serializers.CharField(source="definition.name")
    unit = serializers.CharField(source="definition.unit")
    direction = serializers.CharField(source="definition.direction")
    value = serializers.FloatField(allow_null=True)
    status = serializers.CharField()
    green = serializers.FloatField(source="bounds.0")
    amber = serializers.FloatField(source="bounds.1")
    bounds_source = serializers.CharField()
    reliable = serializers.BooleanField(allow_null=True)
    note = serializers.CharField()


class MeasurementOutput(serializers.Serializer):
    """One point of a KPI's time series."""

    kpi = serializers.CharField()
    value = serializers.FloatField()
    measured_at = serializers.DateTimeField()
    trigger = serializers.CharField()
    run = serializers.IntegerField(source="run_id", allow_null=True)
    reliable = serializers.BooleanField(allow_null=True)
    details = serializers.JSONField()


class ThresholdInput(InputSerializer):
    """Set a team's bounds for a KPI (per tier) or a system override."""

    kpi = serializers.ChoiceField(choices=sorted(BY_KEY))
    green = serializers.FloatField()
    amber = serializers.FloatField()
    tier = serializers.IntegerField(min_value=1, max_value=4, required=False, allow_null=True, default=None)
    system = serializers.IntegerField(required=False, allow_null=True, default=None)


class ThresholdOutput(serializers.Serializer):
    """A stored threshold."""

    id = serializers.IntegerField()
    kpi = serializers.CharField()
    tier = serializers.IntegerField(allow_null=True)
    system = serializers.IntegerField(source="system_id", allow_null=True)
    green = serializers.FloatField()
    amber = serializers.FloatField()
