"""The evidence page of a control: which run metrics must hold, and what they say now."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evaluations.evidence import METRICS
from evaluations.evidence_services import evidence_requirement_create, evidence_requirement_delete
from evaluations.models import Comparator, EvidenceRequirement, RunKind
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import capabilities_in
from threatmodel.selectors import element_get


class EvidenceRequirementForm(forms.Form):
    """Require a metric of the latest run of a kind."""

    kind = forms.ChoiceField(choices=RunKind.choices, label="Run kind")
    metric = forms.ChoiceField(choices=sorted({(m, m) for names in METRICS.values() for m in names}))
    comparator = forms.ChoiceField(choices=Comparator.choices)
    threshold = forms.FloatField()
    epsilon = forms.FloatField(required=False, help_text="For robustness metrics measured per epsilon, e.g. 0.1.")
    max_age_days = forms.IntegerField(min_value=1, initial=30, label="Maximum age (days)")


@login_required
def control_evidence(request: HttpRequest, control_id: int) -> HttpResponse:
    """Show and add a control's evidence requirements."""
    control = element_get(user=request.user, kind="control", id=control_id)
    system = control.version.threat_model.system
    can_edit = Capability.EDIT in capabilities_in(request.user, system.team_id)
    form = EvidenceRequirementForm(request.POST or None)
    if request.method == "POST":
        if not can_edit:
            raise Http404("No such control.")
        if form.is_valid():
            try:
                evidence_requirement_create(actor=request.user, control=control, **form.cleaned_data)
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    for message in errors:
                        form.add_error(field if field in form.fields else None, message)
            else:
                messages.success(request, "Evidence requirement added; the control's evidence was checked.")
                return redirect("evaluations:control-evidence", control_id=control.pk)
    requirements = EvidenceRequirement.objects.filter(system=system, control_uid=control.uid)
    return render(
        request,
        "evaluations/control_evidence.html",
        {
            "control": control,
            "system": system,
            "requirements": requirements,
            "form": form,
            "can_edit": can_edit,
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def control_evidence_delete(request: HttpRequest, control_id: int, requirement_id: int) -> HttpResponse:
    """Remove one requirement."""
    control = element_get(user=request.user, kind="control", id=control_id, capability=Capability.EDIT)
    requirement = EvidenceRequirement.objects.filter(
        pk=requirement_id, control_uid=control.uid, system_id=control.version.threat_model.system_id
    ).first()
    if requirement is None:
        raise Http404("No such requirement.")
    evidence_requirement_delete(actor=request.user, requirement=requirement)
    messages.success(request, "Requirement removed.")
    return redirect("evaluations:control-evidence", control_id=control.pk)
