"""The audit-log filter form."""

from __future__ import annotations

from django import forms


class AuditFilterForm(forms.Form):
    """Filters for a team's audit log."""

    actor = forms.CharField(required=False, label="Actor contains")
    verb = forms.ChoiceField(required=False, choices=[("", "Any action")], label="Action")
    object_type = forms.ChoiceField(required=False, choices=[("", "Any object")], label="Object type")
    object_id = forms.CharField(required=False, label="Object id")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: object, verbs: list[str], object_types: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["verb"].choices = [("", "Any action"), *[(v, v) for v in verbs]]
        self.fields["object_type"].choices = [("", "Any object"), *[(t, t) for t in object_types]]

    def clean(self) -> dict:
        """``since`` must not be after ``until``."""
        cleaned = super().clean()
        if cleaned.get("since") and cleaned.get("until") and cleaned["since"] > cleaned["until"]:
            self.add_error("since", "'Since' is after 'until'; swap the dates.")
        return cleaned
