"""Forms for ML systems."""

from __future__ import annotations

from typing import Any

from django import forms

from garrison.accounts.models import Team
from threatmodel.models import CriticalityTier, LifecycleStage, System


class TagsField(forms.CharField):
    """Comma-separated tags in a text box, a list in Python."""

    def prepare_value(self, value: Any) -> Any:
        """Show a list as 'a, b'."""
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value: Any) -> list[str]:
        """Split on commas and whitespace."""
        text = super().to_python(value) or ""
        return [tag for tag in (part.strip().lower() for part in text.replace(",", " ").split()) if tag]


class SystemForm(forms.ModelForm):
    """Create or edit a system's inventory entry."""

    tags = TagsField(required=False, help_text="Comma-separated, e.g. nlp, email, customer-facing.")
    deployment_endpoint = forms.URLField(
        required=False, assume_scheme="https", help_text="Where the model is served, if it is."
    )

    class Meta:
        model = System
        fields = [
            "name",
            "slug",
            "description",
            "lifecycle_stage",
            "criticality_tier",
            "data_classification",
            "deployment_endpoint",
            "tags",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}
        help_texts = {"slug": "Used in URLs; leave empty to derive it from the name."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False


class SystemCreateForm(SystemForm):
    """Register a new system in one of the user's teams."""

    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)

    class Meta(SystemForm.Meta):
        fields = ["team", *SystemForm.Meta.fields]

    def __init__(self, *args: Any, teams: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams


class SystemFilterForm(forms.Form):
    """Search and filters on the systems list."""

    q = forms.CharField(required=False, label="Search")
    stage = forms.ChoiceField(required=False, choices=[("", "Any stage"), *LifecycleStage.choices])
    tier = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, choices=[("", "Any tier"), *CriticalityTier.choices]
    )
    tag = forms.CharField(required=False)
