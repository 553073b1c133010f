"""API serializers for ML systems."""

from __future__ import annotations

from rest_framework import serializers

from garrison.core.api.serializers import InputSerializer
from threatmodel.models import CriticalityTier, DataClassification, LifecycleStage, System


class SystemOutput(serializers.ModelSerializer):
    """An ML system."""

    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = System
        fields = [
            "id",
            "team",
            "name",
            "slug",
            "description",
            "lifecycle_stage",
            "criticality_tier",
            "data_classification",
            "deployment_endpoint",
            "tags",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class _SystemFields(InputSerializer):
    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(max_length=60, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices, required=False)
    criticality_tier = serializers.ChoiceField(choices=CriticalityTier.choices, required=False)
    data_classification = serializers.ChoiceField(choices=DataClassification.choices, required=False)
    deployment_endpoint = serializers.URLField(required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=20)


class SystemCreateInput(_SystemFields):
    """Register a system in a team."""

    team = serializers.SlugField(help_text="Slug of the owning team.")


class SystemUpdateInput(_SystemFields):
    """Change a system; send only the fields to change."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("partial", True)
        super().__init__(*args, **kwargs)


class SystemFilterInput(InputSerializer):
    """Filters for the systems list."""

    team = serializers.SlugField(required=False, default="")
    search = serializers.CharField(required=False, allow_blank=True, default="")
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices, required=False, default="")
    criticality_tier = serializers.ChoiceField(choices=CriticalityTier.choices, required=False, default=None)
    tag = serializers.CharField(required=False, allow_blank=True, default="")
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)
