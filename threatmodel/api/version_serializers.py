"""API serializers for threat models, their versions, review transitions and diffs, and ATLAS entries."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from garrison.core.api.serializers import InputSerializer
from threatmodel.api.element_serializers import (
    BoundaryOutput,
    ComponentOutput,
    ControlOutput,
    FlowOutput,
    ThreatOutput,
)
from threatmodel.models import AtlasEntry, AtlasKind, ThreatModel, ThreatModelVersion
from threatmodel.selectors import VersionContent


def _person() -> serializers.SlugRelatedField:
    return serializers.SlugRelatedField(slug_field="username", read_only=True)


class VersionOutput(serializers.ModelSerializer):
    """A threat-model version's status and review trail (people by username)."""

    system = serializers.IntegerField(source="threat_model.system_id", read_only=True)
    author = _person()
    submitted_by = _person()
    reviewed_by = _person()
    is_editable = serializers.BooleanField(read_only=True)

    class Meta:
        model = ThreatModelVersion
        fields = [
            "id",
            "threat_model",
            "system",
            "number",
            "status",
            "is_editable",
            "based_on",
            "summary",
            "author",
            "created_at",
            "submitted_by",
            "submitted_at",
            "reviewed_by",
            "reviewed_at",
            "review_note",
        ]
        read_only_fields = fields


class ThreatModelOutput(serializers.ModelSerializer):
    """A threat model with its versions, newest first."""

    versions = VersionOutput(many=True, read_only=True)

    class Meta:
        model = ThreatModel
        fields = ["id", "system", "title", "created_at", "versions"]
        read_only_fields = fields


class CoverageOutput(serializers.Serializer):
    """High and critical accepted threats, and how many a verified control covers."""

    covered = serializers.IntegerField()
    total = serializers.IntegerField()
    ratio = serializers.FloatField(allow_null=True)


class HeatCellOutput(serializers.Serializer):
    """One heat-map cell: how many threats have this likelihood (and the row's impact), and the band."""

    likelihood = serializers.IntegerField()
    count = serializers.IntegerField()
    level = serializers.CharField()


class HeatRowOutput(serializers.Serializer):
    """One heat-map row (an impact score)."""

    impact = serializers.IntegerField()
    cells = HeatCellOutput(many=True)


class HeatMapOutput(serializers.Serializer):
    """Inherent and residual heat maps: rows are impact 5..1, cells likelihood 1..5."""

    inherent = HeatRowOutput(many=True)
    residual = HeatRowOutput(many=True)


class VersionContentOutput(serializers.Serializer):
    """A version with everything in it: boundaries, components, flows, threats (with risk), controls, coverage."""

    version = VersionOutput()
    boundaries = BoundaryOutput(many=True)
    components = ComponentOutput(many=True)
    flows = FlowOutput(many=True)
    threats = ThreatOutput(many=True)
    controls = ControlOutput(many=True)
    coverage = serializers.SerializerMethodField()
    heat_map = serializers.SerializerMethodField()
    status_counts = serializers.DictField(child=serializers.IntegerField())

    def __init__(self, content: VersionContent | None = None, **kwargs: Any) -> None:
        if content is not None:
            # Threats reuse the register's residual risk and controls instead of querying again.
            kwargs.setdefault("context", {})["register"] = {row.threat.pk: row for row in content.register}
        super().__init__(content, **kwargs)

    @extend_schema_field(CoverageOutput)
    def get_coverage(self, content: VersionContent) -> dict[str, Any]:
        """Control coverage of high and critical threats."""
        covered, total = content.coverage
        return {"covered": covered, "total": total, "ratio": content.coverage_ratio}

    @extend_schema_field(HeatMapOutput)
    def get_heat_map(self, content: VersionContent) -> dict[str, Any]:
        """Inherent and residual heat maps."""
        return {"inherent": content.heat_map(), "residual": content.heat_map(residual=True)}


class ThreatModelCreateInput(InputSerializer):
    """Start a threat model for a system (version 1 is an empty draft)."""

    title = serializers.CharField(max_length=160, required=False, allow_blank=True, default="")


class VersionSubmitInput(InputSerializer):
    """Send a draft for review."""

    summary = serializers.CharField(required=False, allow_blank=True, default="", help_text="What changed.")


class VersionApproveInput(InputSerializer):
    """Approve a version in review."""

    note = serializers.CharField(required=False, allow_blank=True, default="")


class VersionSendBackInput(InputSerializer):
    """Return a version to draft, saying what must change."""

    note = serializers.CharField()


class DiffQueryInput(InputSerializer):
    """Which version to compare with."""

    against = serializers.IntegerField(help_text="Id of the other version of the same threat model (the older one).")


class ElementChangeOutput(serializers.Serializer):
    """One element added, removed or changed; ``fields`` maps each changed field to [before, after]."""

    uid = serializers.UUIDField()
    label = serializers.CharField()
    change = serializers.ChoiceField(choices=["added", "changed", "removed"])
    fields = serializers.DictField(child=serializers.ListField())


class DiffSectionsOutput(serializers.Serializer):
    """The changes per kind of element."""

    boundaries = ElementChangeOutput(many=True)
    components = ElementChangeOutput(many=True)
    flows = ElementChangeOutput(many=True)
    threats = ElementChangeOutput(many=True)
    controls = ElementChangeOutput(many=True)


class DiffOutput(serializers.Serializer):
    """What differs between two versions (``old`` and ``new`` are version numbers)."""

    old = serializers.IntegerField()
    new = serializers.IntegerField()
    sections = DiffSectionsOutput()


class AtlasFilterInput(InputSerializer):
    """Filters for the ATLAS reference list."""

    kind = serializers.ChoiceField(choices=AtlasKind.choices, required=False, default="")
    search = serializers.CharField(required=False, allow_blank=True, default="")
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)


class AtlasNameOutput(serializers.Serializer):
    """A name an ATLAS ID carried from a release on."""

    release = serializers.CharField(source="release.version")
    name = serializers.CharField()


class AtlasEntryOutput(serializers.ModelSerializer):
    """An ATLAS tactic, technique or mitigation, with the names it carried per release."""

    names = AtlasNameOutput(many=True, read_only=True)

    class Meta:
        model = AtlasEntry
        fields = ["atlas_id", "kind", "name", "parent_id", "related_ids", "description", "withdrawn", "names"]
        read_only_fields = fields
