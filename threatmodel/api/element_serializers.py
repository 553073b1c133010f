"""API serializers for the parts of a version: trust boundaries, components, flows, threats and controls.

Inputs name other elements by id (``boundary``, ``component``, ``flow``, ``source``,
``target``, ``threats``) and people by username (``owner``); the views resolve them
through the selectors, so an element of another team is a 404 and one of another
version a 400 from the service.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from garrison.core.api.serializers import InputSerializer
from threatmodel.catalog import COMPONENT_TYPES, STRIDE_CATEGORIES
from threatmodel.models import (
    Component,
    Control,
    ControlStatus,
    ControlType,
    DataFlow,
    Threat,
    ThreatStatus,
    TrustBoundary,
)
from threatmodel.risk import residual_risk, risk_level
from threatmodel.selectors import RegisterRow


class PartialInput(InputSerializer):
    """An update input: send only the fields to change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("partial", True)
        super().__init__(*args, **kwargs)


def _ids(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(child=serializers.CharField(max_length=32), **kwargs)


# --- Outputs -------------------------------------------------------------------------------------


class BoundaryOutput(serializers.ModelSerializer):
    """A trust boundary."""

    class Meta:
        model = TrustBoundary
        fields = ["id", "uid", "version", "name", "description"]
        read_only_fields = fields


class ComponentOutput(serializers.ModelSerializer):
    """A component; ``boundary`` is the id of its trust boundary, or null."""

    class Meta:
        model = Component
        fields = ["id", "uid", "version", "name", "component_type", "description", "boundary"]
        read_only_fields = fields


class FlowOutput(serializers.ModelSerializer):
    """A data flow between two components (ids)."""

    crosses_trust_boundary = serializers.BooleanField(read_only=True)

    class Meta:
        model = DataFlow
        fields = [
            "id",
            "uid",
            "version",
            "source",
            "target",
            "data",
            "protocol",
            "authenticated",
            "crosses_trust_boundary",
        ]
        read_only_fields = fields


class RiskOutput(serializers.Serializer):
    """Likelihood and impact (1-5 each), their product and its band."""

    likelihood = serializers.IntegerField()
    impact = serializers.IntegerField()
    score = serializers.IntegerField()
    level = serializers.ChoiceField(choices=["low", "medium", "high", "critical"])


class RiskAcceptanceOutput(serializers.Serializer):
    """An approver's acceptance of a threat's residual risk."""

    accepted_by = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    expires = serializers.DateField(allow_null=True)
    active = serializers.BooleanField()


class ThreatOutput(serializers.ModelSerializer):
    """A threat with its inherent risk, its residual risk after working controls, and those controls (ids)."""

    inherent_risk = serializers.SerializerMethodField()
    residual_risk = serializers.SerializerMethodField()
    risk_acceptance = serializers.SerializerMethodField()
    controls = serializers.SerializerMethodField()

    class Meta:
        model = Threat
        fields = [
            "id",
            "uid",
            "version",
            "catalog_key",
            "title",
            "description",
            "stride",
            "component",
            "flow",
            "atlas_techniques",
            "owasp_ml",
            "suggested_mitigations",
            "evaluation_kind",
            "likelihood",
            "impact",
            "status",
            "justification",
            "inherent_risk",
            "residual_risk",
            "risk_acceptance",
            "controls",
        ]
        read_only_fields = fields

    def _row(self, threat: Threat) -> RegisterRow:
        register = self.context.setdefault("register", {})
        if threat.pk not in register:
            controls = list(threat.controls.all())
            register[threat.pk] = RegisterRow(
                threat=threat,
                controls=controls,
                residual=residual_risk(likelihood=threat.likelihood, impact=threat.impact, controls=controls),
            )
        return register[threat.pk]

    @extend_schema_field(RiskOutput)
    def get_inherent_risk(self, threat: Threat) -> dict[str, Any]:
        """Likelihood x impact before controls."""
        score = threat.inherent_risk
        return {"likelihood": threat.likelihood, "impact": threat.impact, "score": score, "level": risk_level(score)}

    @extend_schema_field(RiskOutput)
    def get_residual_risk(self, threat: Threat) -> dict[str, Any]:
        """Likelihood x impact after the threat's effective controls."""
        residual = self._row(threat).residual
        return {
            "likelihood": residual.likelihood,
            "impact": residual.impact,
            "score": residual.score,
            "level": residual.level,
        }

    @extend_schema_field(RiskAcceptanceOutput(allow_null=True))
    def get_risk_acceptance(self, threat: Threat) -> dict[str, Any] | None:
        """The acceptance, if an approver gave one."""
        if not threat.risk_accepted_by_id:
            return None
        return {
            "accepted_by": threat.risk_accepted_by.get_username(),
            "reason": threat.risk_acceptance_reason,
            "expires": threat.risk_acceptance_expires,
            "active": threat.risk_acceptance_active,
        }

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_controls(self, threat: Threat) -> list[int]:
        """Ids of the controls that mitigate the threat."""
        return sorted(c.pk for c in self._row(threat).controls)


class ControlOutput(serializers.ModelSerializer):
    """A control: its owner (username), the threats it mitigates (ids) and what its evidence says."""

    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    threats = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    is_effective = serializers.BooleanField(read_only=True)
    is_verified = serializers.BooleanField(read_only=True)
    is_overdue = serializers.BooleanField(read_only=True)

    class Meta:
        model = Control
        fields = [
            "id",
            "uid",
            "version",
            "name",
            "description",
            "control_type",
            "atlas_mitigations",
            "owner",
            "due_date",
            "status",
            "threats",
            "evidence_state",
            "evidence_detail",
            "evidence_checked_at",
            "is_effective",
            "is_verified",
            "is_overdue",
        ]
        read_only_fields = fields


# --- Inputs ----------------------------------------------------------------------------------------


class BoundaryCreateInput(InputSerializer):
    """Add a trust boundary."""

    name = serializers.CharField(max_length=120)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class BoundaryUpdateInput(PartialInput):
    """Change a trust boundary."""

    name = serializers.CharField(max_length=120)
    description = serializers.CharField(allow_blank=True)


class ComponentCreateInput(InputSerializer):
    """Add a component; ``suggest`` adds the catalog's threats for its type (suggested, to accept or dismiss)."""

    name = serializers.CharField(max_length=120)
    component_type = serializers.ChoiceField(choices=list(COMPONENT_TYPES.items()))
    description = serializers.CharField(required=False, allow_blank=True, default="")
    boundary = serializers.IntegerField(required=False, allow_null=True, help_text="Id of a trust boundary.")
    suggest = serializers.BooleanField(required=False, default=True)


class ComponentUpdateInput(PartialInput):
    """Change a component; ``boundary: null`` moves it outside any boundary."""

    name = serializers.CharField(max_length=120)
    component_type = serializers.ChoiceField(choices=list(COMPONENT_TYPES.items()))
    description = serializers.CharField(allow_blank=True)
    boundary = serializers.IntegerField(allow_null=True, help_text="Id of a trust boundary.")


class FlowCreateInput(InputSerializer):
    """Add a data flow between two components of the version (ids)."""

    source = serializers.IntegerField(help_text="Id of the sending component.")
    target = serializers.IntegerField(help_text="Id of the receiving component.")
    data = serializers.CharField(max_length=160)
    protocol = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
    authenticated = serializers.BooleanField(required=False, default=True)
    suggest = serializers.BooleanField(required=False, default=True)


class FlowUpdateInput(PartialInput):
    """Change a data flow."""

    source = serializers.IntegerField()
    target = serializers.IntegerField()
    data = serializers.CharField(max_length=160)
    protocol = serializers.CharField(max_length=60, allow_blank=True)
    authenticated = serializers.BooleanField()


class ThreatCreateInput(InputSerializer):
    """Add a custom threat (accepted) to exactly one component or one data flow."""

    title = serializers.CharField(max_length=200)
    stride = serializers.ChoiceField(choices=list(STRIDE_CATEGORIES.items()))
    component = serializers.IntegerField(required=False, allow_null=True, default=None)
    flow = serializers.IntegerField(required=False, allow_null=True, default=None)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    atlas_techniques = _ids(required=False, default=list, help_text="ATLAS technique IDs, e.g. AML.T0043.")
    owasp_ml = _ids(required=False, default=list, help_text="OWASP ML Top 10 IDs, ML01 to ML10.")
    likelihood = serializers.IntegerField(min_value=1, max_value=5, required=False, default=3)
    impact = serializers.IntegerField(min_value=1, max_value=5, required=False, default=3)


class ThreatUpdateInput(PartialInput):
    """Change a threat's text, mapping or scores (decide its status through ``decide``)."""

    title = serializers.CharField(max_length=200)
    stride = serializers.ChoiceField(choices=list(STRIDE_CATEGORIES.items()))
    description = serializers.CharField(allow_blank=True)
    atlas_techniques = _ids()
    owasp_ml = _ids()
    likelihood = serializers.IntegerField(min_value=1, max_value=5)
    impact = serializers.IntegerField(min_value=1, max_value=5)


class ThreatDecideInput(InputSerializer):
    """Accept a threat, or mark it not applicable with a justification."""

    status = serializers.ChoiceField(choices=ThreatStatus.choices)
    justification = serializers.CharField(required=False, allow_blank=True, default="")


class ThreatAcceptRiskInput(InputSerializer):
    """Accept a threat's residual risk until a date (approvers)."""

    reason = serializers.CharField()
    expires = serializers.DateField()


class ControlCreateInput(InputSerializer):
    """Add a control; ``owner`` is a team member's username and ``threats`` the ids of the threats it mitigates."""

    name = serializers.CharField(max_length=160)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    control_type = serializers.ChoiceField(choices=ControlType.choices, required=False, default=ControlType.PREVENTIVE)
    atlas_mitigations = _ids(required=False, default=list, help_text="ATLAS mitigation IDs, e.g. AML.M0015.")
    owner = serializers.CharField(required=False, allow_null=True, allow_blank=True, default=None)
    due_date = serializers.DateField(required=False, allow_null=True, default=None)
    status = serializers.ChoiceField(choices=ControlStatus.choices, required=False, default=ControlStatus.PLANNED)
    threats = serializers.ListField(child=serializers.IntegerField(), required=False, default=list, max_length=500)


class ControlUpdateInput(PartialInput):
    """Change a control; ``threats`` replaces the list of mitigated threats."""

    name = serializers.CharField(max_length=160)
    description = serializers.CharField(allow_blank=True)
    control_type = serializers.ChoiceField(choices=ControlType.choices)
    atlas_mitigations = _ids()
    owner = serializers.CharField(allow_null=True, allow_blank=True)
    due_date = serializers.DateField(allow_null=True)
    status = serializers.ChoiceField(choices=ControlStatus.choices)
    threats = serializers.ListField(child=serializers.IntegerField(), max_length=500)
