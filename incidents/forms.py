"""Forms of the incident pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from evaluations.models import EvaluationRun
from incidents.models import ActionStatus, DetectionSource, EvidenceKind, Severity
from threatmodel.models import Control, System, Threat, VersionStatus


def _team_users(team: Any) -> Any:
    return get_user_model().objects.filter(memberships__team=team).order_by("username")


class IncidentForm(forms.Form):
    """Open an incident."""

    title = forms.CharField(max_length=200)
    systems = forms.ModelMultipleChoiceField(queryset=System.objects.none(), widget=forms.CheckboxSelectMultiple)
    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.HIGH)
    detection_source = forms.ChoiceField(choices=DetectionSource.choices)
    detected_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), help_text="Leave empty for now."
    )
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False)
    summary = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, systems: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["systems"].queryset = systems
        self.fields["owner"].queryset = (
            get_user_model().objects.filter(memberships__team__systems__in=systems).distinct().order_by("username")
        )


class IncidentEditForm(forms.Form):
    """Edit an incident's analysis."""

    title = forms.CharField(max_length=200)
    severity = forms.ChoiceField(choices=Severity.choices)
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False)
    summary = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    root_cause = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    lessons_learned = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, team: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = _team_users(team)


class TimelineForm(forms.Form):
    """Add a timeline entry."""

    occurred_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), label="When (UTC)")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    atlas_tactic = forms.CharField(required=False, max_length=32, label="ATLAS tactic", help_text="e.g. AML.TA0012")
    atlas_technique = forms.CharField(
        required=False, max_length=32, label="ATLAS technique", help_text="e.g. AML.T0020"
    )


class EvidenceForm(forms.Form):
    """Attach evidence."""

    kind = forms.ChoiceField(choices=EvidenceKind.choices)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    reference = forms.CharField(required=False, max_length=200)


class ActionForm(forms.Form):
    """Add a remediation action."""

    title = forms.CharField(max_length=200)
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False)
    due_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    run = forms.ModelChoiceField(
        queryset=EvaluationRun.objects.none(),
        required=False,
        label="Completed by run",
        help_text="A retrain or re-evaluation run whose success completes the action.",
    )

    def __init__(self, *args: Any, team: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = _team_users(team)
        # The 50 latest by id: a sliced queryset cannot validate a choice (its .get() raises, read as invalid).
        latest = (
            EvaluationRun.objects.filter(system__team=team)
            .exclude(status__in=["failed", "cancelled"])
            .order_by("-queued_at")
            .values_list("pk", flat=True)[:50]
        )
        self.fields["run"].queryset = (
            EvaluationRun.objects.filter(pk__in=list(latest))
            .select_related("system", "model_artifact")
            .order_by("-queued_at")
        )


class ActionStatusForm(forms.Form):
    """Move a remediation action."""

    status = forms.ChoiceField(choices=ActionStatus.choices)
    verification = forms.CharField(required=False)


class LinkForm(forms.Form):
    """Link realised threats and involved controls (from the latest version of each affected threat model)."""

    threats = forms.ModelMultipleChoiceField(
        queryset=Threat.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    controls = forms.ModelMultipleChoiceField(
        queryset=Control.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, incident: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = {
            "version__threat_model__system__in": incident.systems.all(),
            "version__status__in": [VersionStatus.APPROVED, VersionStatus.DRAFT, VersionStatus.IN_REVIEW],
        }
        self.fields["threats"].queryset = (
            Threat.objects.filter(**current)
            .exclude(status="not_applicable")
            .select_related("component", "flow__source", "flow__target", "version")
            .order_by("title")
        )
        self.fields["controls"].queryset = Control.objects.filter(**current).select_related("version").order_by("name")
        self.fields["threats"].label_from_instance = lambda t: (
            f"{t.title} — {t.component or t.flow} (v{t.version.number})"
        )
        self.fields["controls"].label_from_instance = lambda c: f"{c.name} (v{c.version.number})"
