"""Incident pages: list, open, the incident's page with its workflow, and the report PDF."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from garrison.accounts.roles import Capability
from garrison.accounts.selectors import capabilities_in, team_ids_for
from garrison.core.forms import form_errors_to_messages, run_service
from incidents import selectors, services
from incidents.forms import (
    ActionForm,
    ActionStatusForm,
    EvidenceForm,
    IncidentEditForm,
    IncidentForm,
    LinkForm,
    TimelineForm,
)
from incidents.models import IncidentStatus, RemediationAction, Severity
from incidents.reports import duration_label, evidence_rows
from incidents.services import TRANSITIONS
from threatmodel.models import System


@login_required
def incident_list(request: HttpRequest) -> HttpResponse:
    """Incidents of the user's teams."""
    status, severity = request.GET.get("status", ""), request.GET.get("severity", "")
    incidents = selectors.incident_list(user=request.user, status=status, severity=severity)
    can_open = bool(team_ids_for(request.user, Capability.EDIT))
    return render(
        request,
        "incidents/incident_list.html",
        {
            "incidents": incidents,
            "status": status,
            "severity": severity,
            "can_open": can_open,
            "statuses": IncidentStatus.choices,
            "severities": Severity.choices,
        },
    )


@login_required
def incident_open(request: HttpRequest) -> HttpResponse:
    """Open an incident on systems of one of the user's teams."""
    systems = System.objects.filter(team_id__in=team_ids_for(request.user, Capability.EDIT)).select_related("team")
    initial = {"systems": systems.filter(pk=request.GET.get("system"))} if request.GET.get("system") else {}
    form = IncidentForm(request.POST or None, systems=systems, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        chosen = list(data.pop("systems"))
        team = chosen[0].team
        created: list[Any] = []
        if run_service(
            request,
            lambda: created.append(services.incident_open(actor=request.user, team=team, systems=chosen, **data)),
            "Incident opened.",
        ):
            return redirect(created[0])
    return render(request, "incidents/incident_open.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An incident: status, timeline, evidence, links, remediation, analysis and the report."""
    incident = selectors.incident_get(user=request.user, id=pk)
    caps = capabilities_in(request.user, incident.team_id)
    can_edit = Capability.EDIT in caps
    return render(
        request,
        "incidents/incident_detail.html",
        {
            "incident": incident,
            "evidence": evidence_rows(list(incident.evidence.all())),
            "time_to_remediate": duration_label(incident.time_to_remediate),
            "can_edit": can_edit,
            "next_statuses": [
                IncidentStatus(s) for s in sorted(TRANSITIONS[incident.status], key=list(IncidentStatus.values).index)
            ],
            "stages": IncidentStatus.choices,
            "stage_index": list(IncidentStatus.values).index(incident.status),
            "forms": {
                "edit": IncidentEditForm(
                    team=incident.team,
                    initial={
                        "title": incident.title,
                        "severity": incident.severity,
                        "owner": incident.owner,
                        "summary": incident.summary,
                        "root_cause": incident.root_cause,
                        "lessons_learned": incident.lessons_learned,
                    },
                ),
                "timeline": TimelineForm(),
                "evidence": EvidenceForm(),
                "action": ActionForm(team=incident.team),
                "action_status": ActionStatusForm(),
                "link": LinkForm(
                    incident=incident,
                    initial={"threats": list(incident.threats.all()), "controls": list(incident.controls.all())},
                )
                if can_edit
                else None,
            },
        },
    )


def _editable(request: HttpRequest, pk: int) -> Any:
    return selectors.incident_get(user=request.user, id=pk, capability=Capability.EDIT)


@login_required
@require_POST
def incident_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the incident's analysis."""
    incident = _editable(request, pk)
    form = IncidentEditForm(request.POST, team=incident.team)
    if form.is_valid():
        run_service(
            request,
            lambda: services.incident_update(actor=request.user, incident=incident, **form.cleaned_data),
            "Saved.",
        )
    else:
        form_errors_to_messages(request, form)
    return redirect(incident)


@login_required
@require_POST
def incident_transition(request: HttpRequest, pk: int) -> HttpResponse:
    """Move the incident to its next stage."""
    incident = _editable(request, pk)
    to = request.POST.get("to", "")
    label = IncidentStatus(to).label.lower() if to in IncidentStatus.values else to
    run_service(
        request,
        lambda: services.incident_transition(actor=request.user, incident=incident, to=to),
        f"The incident is now {label}.",
    )
    return redirect(incident)


def _post_form(
    request: HttpRequest,
    pk: int,
    form_class: type,
    service: Callable[..., Any],
    success: str,
    anchor: str,
    **form_kwargs: Any,
) -> HttpResponse:
    incident = _editable(request, pk)
    form = form_class(request.POST, **{k: (incident.team if v == "team" else v) for k, v in form_kwargs.items()})
    if form.is_valid():
        run_service(request, lambda: service(actor=request.user, incident=incident, **form.cleaned_data), success)
    else:
        form_errors_to_messages(request, form)
    return redirect(incident.get_absolute_url() + f"#{anchor}")


@login_required
@require_POST
def timeline_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a timeline entry."""
    return _post_form(request, pk, TimelineForm, services.timeline_add, "Timeline entry added.", "timeline")


@login_required
@require_POST
def evidence_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Attach evidence."""
    return _post_form(request, pk, EvidenceForm, services.evidence_add, "Evidence attached.", "evidence")


@login_required
@require_POST
def action_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a remediation action."""
    return _post_form(request, pk, ActionForm, services.action_add, "Remediation action added.", "actions", team="team")


@login_required
@require_POST
def action_status(request: HttpRequest, pk: int, action_id: int) -> HttpResponse:
    """Move a remediation action."""
    incident = _editable(request, pk)
    action = RemediationAction.objects.filter(incident=incident, pk=action_id).first()
    form = ActionStatusForm(request.POST)
    if action is not None and form.is_valid():
        run_service(
            request,
            lambda: services.action_set_status(actor=request.user, action=action, **form.cleaned_data),
            f"'{action.title}' is {form.cleaned_data['status'].replace('_', ' ')}.",
        )
    else:
        messages.error(request, "Choose a valid status for an action of this incident.")
    return redirect(incident.get_absolute_url() + "#actions")


@login_required
@require_POST
def incident_link(request: HttpRequest, pk: int) -> HttpResponse:
    """Link realised threats and involved controls."""
    incident = _editable(request, pk)
    form = LinkForm(request.POST, incident=incident)
    if form.is_valid():
        run_service(
            request,
            lambda: services.incident_link(
                actor=request.user,
                incident=incident,
                threats=list(form.cleaned_data["threats"]),
                controls=list(form.cleaned_data["controls"]),
            ),
            "Links saved.",
        )
    else:
        form_errors_to_messages(request, form)
    return redirect(incident.get_absolute_url() + "#links")


@login_required
@require_POST
def incident_threat_model_draft(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a threat-model draft from the incident."""
    incident = _editable(request, pk)
    drafts: list[Any] = []
    if run_service(
        request,
        lambda: drafts.append(services.incident_start_threat_model_draft(actor=request.user, incident=incident)),
        "Threat-model draft started with the realised threats.",
    ):
        return redirect(drafts[0])
    return redirect(incident.get_absolute_url() + "#links")
