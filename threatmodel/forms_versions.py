"""Forms of the threat-model editor."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from threatmodel.catalog import COMPONENT_TYPES, OWASP_ML_TOP10, STRIDE_CATEGORIES
from threatmodel.models import (
    Component,
    ControlStatus,
    ControlType,
    DataFlow,
    Threat,
    ThreatModelVersion,
    ThreatStatus,
    TrustBoundary,
)

SCORES = [(i, str(i)) for i in range(1, 6)]


class IdListField(forms.CharField):
    """ATLAS IDs typed as 'AML.T0043, AML.T0015'."""

    def prepare_value(self, value: Any) -> Any:
        """Show a list as text."""
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        """Split on commas and spaces, upper-case the IDs."""
        text = super().to_python(value) or ""
        return [part.strip().upper() for part in text.replace(",", " ").split() if part.strip()]


class BoundaryForm(forms.Form):
    """Add a trust boundary."""

    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ComponentForm(forms.Form):
    """Add or edit a component."""

    name = forms.CharField(max_length=120)
    component_type = forms.ChoiceField(choices=list(COMPONENT_TYPES.items()), label="Type")
    boundary = forms.ModelChoiceField(
        queryset=TrustBoundary.objects.none(),
        required=False,
        empty_label="(outside any boundary)",
        label="Trust boundary",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, version: ThreatModelVersion, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["boundary"].queryset = version.trustboundarys.all()


class FlowForm(forms.Form):
    """Add a data flow."""

    source = forms.ModelChoiceField(queryset=Component.objects.none())
    target = forms.ModelChoiceField(queryset=Component.objects.none())
    data = forms.CharField(max_length=160, help_text="What moves, e.g. 'labelled SMS messages'.")
    protocol = forms.CharField(max_length=60, required=False)
    authenticated = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, version: ThreatModelVersion, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("source", "target"):
            self.fields[name].queryset = version.components.all()


class ThreatDecisionForm(forms.Form):
    """Accept a threat or mark it not applicable."""

    status = forms.ChoiceField(
        choices=[(ThreatStatus.ACCEPTED, "Accept"), (ThreatStatus.NOT_APPLICABLE, "Not applicable")]
    )
    justification = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ThreatEditForm(forms.Form):
    """Edit a threat's wording, mapping and scores."""

    title = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    likelihood = forms.TypedChoiceField(choices=SCORES, coerce=int)
    impact = forms.TypedChoiceField(choices=SCORES, coerce=int)
    atlas_techniques = IdListField(
        required=False, label="ATLAS techniques", help_text="IDs such as AML.T0043, comma-separated."
    )
    owasp_ml = forms.MultipleChoiceField(
        choices=list(OWASP_ML_TOP10.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="OWASP ML Top 10",
    )


class CustomThreatForm(ThreatEditForm):
    """Add a threat the catalog did not suggest."""

    stride = forms.ChoiceField(choices=list(STRIDE_CATEGORIES.items()), label="STRIDE category")
    element = forms.ChoiceField(label="Component or flow")

    field_order = ["title", "stride", "element", "likelihood", "impact", "description", "atlas_techniques", "owasp_ml"]

    def __init__(self, *args: Any, version: ThreatModelVersion, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.version = version
        self.fields["element"].choices = [
            *[(f"component:{c.pk}", f"Component: {c.name}") for c in version.components.all()],
            *[(f"flow:{f.pk}", f"Flow: {f}") for f in version.dataflows.select_related("source", "target")],
        ]

    def clean_element(self) -> dict[str, Any]:
        """Resolve 'component:ID' or 'flow:ID' within this version."""
        kind, _, pk = self.cleaned_data["element"].partition(":")
        model = {"component": Component, "flow": DataFlow}.get(kind)
        element = model.objects.filter(version=self.version, pk=pk).first() if model and pk.isdigit() else None
        if element is None:
            raise forms.ValidationError("Pick a component or flow of this version.")
        return {kind: element}


class RiskAcceptanceForm(forms.Form):
    """Accept a threat's residual risk until a date."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    expires = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))


class ControlForm(forms.Form):
    """Add or edit a control."""

    name = forms.CharField(max_length=160)
    control_type = forms.ChoiceField(choices=ControlType.choices, label="Type")
    status = forms.ChoiceField(choices=ControlStatus.choices)
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False)
    due_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    atlas_mitigations = IdListField(
        required=False, label="ATLAS mitigations", help_text="IDs such as AML.M0015, comma-separated."
    )
    threats = forms.ModelMultipleChoiceField(
        queryset=Threat.objects.none(), required=False, widget=forms.CheckboxSelectMultiple, label="Mitigates"
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, version: ThreatModelVersion, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        team = version.threat_model.system.team
        self.fields["owner"].queryset = get_user_model().objects.filter(memberships__team=team).order_by("username")
        self.fields["threats"].queryset = version.threats.exclude(status=ThreatStatus.NOT_APPLICABLE).order_by(
            "stride", "title"
        )


class SubmitForm(forms.Form):
    """Send a draft for review."""

    summary = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What changed in this version, for the approver.",
    )


class ReviewForm(forms.Form):
    """Approve or send back."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("send_back", "Send back")])
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
