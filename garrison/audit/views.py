"""The audit-log pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from garrison.accounts.roles import Capability
from garrison.accounts.selectors import capabilities_in, team_get, team_list
from garrison.audit.forms import AuditFilterForm
from garrison.audit.selectors import audit_event_list, audit_object_types, audit_verbs

PAGE_SIZE = 50


@login_required
def audit_home(request: HttpRequest) -> HttpResponse:
    """Pick a team's audit log (straight to it when there is only one)."""
    teams = [t for t in team_list(user=request.user) if Capability.VIEW_AUDIT in capabilities_in(request.user, t.id)]
    if len(teams) == 1:
        return redirect("audit:team-log", team=teams[0].slug)
    return render(request, "audit/home.html", {"teams": teams})


@login_required
def team_log(request: HttpRequest, team: str) -> HttpResponse:
    """A team's audit log with filters and paging."""
    team_obj = team_get(user=request.user, slug=team, capability=Capability.VIEW_AUDIT)
    form = AuditFilterForm(
        request.GET or None, verbs=audit_verbs(team=team_obj), object_types=audit_object_types(team=team_obj)
    )
    filters = {}
    if form.is_bound and form.is_valid():
        filters = {key: value for key, value in form.cleaned_data.items() if value}
    events = audit_event_list(user=request.user, team=team_obj, **filters)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/team_log.html",
        {"team": team_obj, "form": form, "page": page, "query": query.urlencode()},
    )
