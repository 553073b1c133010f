"""Forms of the KPI pages."""

from __future__ import annotations

from typing import Any

from django import forms

from kpis.catalog import KPIS


class ThresholdForm(forms.Form):
    """Set a team's bounds for a KPI at a tier, or override them for one system."""

    kpi = forms.ChoiceField(choices=[(k.key, k.name) for k in KPIS], label="KPI")
    scope = forms.ChoiceField(label="Applies to")
    green = forms.FloatField(label="Green bound")
    amber = forms.FloatField(label="Amber bound")

    def __init__(self, *args: Any, systems: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scope"].choices = [
            *[(f"tier:{t}", f"Tier {t} systems") for t in (1, 2, 3, 4)],
            *[(f"system:{s.pk}", f"System: {s.name}") for s in systems],
        ]
        self.systems = {str(s.pk): s for s in systems}

    def clean_scope(self) -> dict[str, Any]:
        """Turn the choice into tier= or system=."""
        kind, _, value = self.cleaned_data["scope"].partition(":")
        if kind == "tier":
            return {"tier": int(value), "system": None}
        return {"tier": None, "system": self.systems[value]}


class GatePolicyForm(forms.Form):
    """What the release gate requires."""

    required_green = forms.MultipleChoiceField(
        choices=[(k.key, k.name) for k in KPIS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="These KPIs must be green (or amber, if allowed below).",
    )
    allowed_amber = forms.MultipleChoiceField(
        choices=[(k.key, k.name) for k in KPIS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Amber on these gives a warning instead of a failure.",
    )
    require_fresh = forms.BooleanField(required=False, label="Require fresh robustness and scan evidence")
    block_unreliable = forms.BooleanField(required=False, label="Fail on an unreliable robustness result")
    block_critical_findings = forms.BooleanField(required=False, label="Fail on critical model-scan findings")
    block_unaccepted_critical_risk = forms.BooleanField(
        required=False, label="Fail on unaccepted critical residual risk"
    )
