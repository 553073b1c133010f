"""Pages for the systems inventory."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from garrison.accounts.models import Team
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import capabilities_in, team_ids_for, team_list, team_roles
from garrison.audit.selectors import audit_event_list
from garrison.core.forms import add_service_errors
from threatmodel import selectors, services
from threatmodel.forms import SystemCreateForm, SystemFilterForm, SystemForm


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The signed-in home page: the user's teams and the systems they govern."""
    roles = team_roles(request.user)
    teams = [{"team": team, "role": roles[team.id]} for team in team_list(user=request.user)]
    systems = selectors.system_list(user=request.user)
    return render(
        request, "threatmodel/home.html", {"teams": teams, "systems": systems[:20], "system_count": systems.count()}
    )


@login_required
def system_list(request: HttpRequest) -> HttpResponse:
    """All systems the user can see, with search and filters."""
    form = SystemFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    systems = selectors.system_list(
        user=request.user,
        search=filters.get("q") or "",
        lifecycle_stage=filters.get("stage") or "",
        criticality_tier=filters.get("tier"),
        tag=filters.get("tag") or "",
    )
    page = Paginator(systems, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    can_create = bool(team_ids_for(request.user, Capability.EDIT))
    return render(
        request,
        "threatmodel/system_list.html",
        {"form": form, "page": page, "query": query.urlencode(), "can_create": can_create},
    )


@login_required
def system_detail(request: HttpRequest, team: str, slug: str) -> HttpResponse:
    """A system's home page."""
    system = selectors.system_get(user=request.user, team_slug=team, slug=slug)
    caps = capabilities_in(request.user, system.team_id)
    history = []
    if Capability.VIEW_AUDIT in caps:
        history = audit_event_list(
            user=request.user, team=system.team, object_type="threatmodel.system", object_id=str(system.pk)
        )[:10]
    return render(
        request,
        "threatmodel/system_detail.html",
        {
            "system": system,
            "can_edit": Capability.EDIT in caps,
            "history": history,
            "threat_models": selectors.threat_model_list(user=request.user, system=system),
        },
    )


@login_required
def system_create(request: HttpRequest) -> HttpResponse:
    """Register a system in one of the user's teams."""
    teams = Team.objects.filter(id__in=team_ids_for(request.user, Capability.EDIT)).order_by("name")
    if not teams:
        messages.error(request, "You need the editor role in a team to register systems.")
        return redirect("threatmodel:system-list")
    form = SystemCreateForm(request.POST or None, teams=teams)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        team = data.pop("team")
        if not data.get("slug"):
            data.pop("slug")
        try:
            system = services.system_create(actor=request.user, team=team, **data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Registered {system.name}.")
            return redirect(system)
    return render(
        request, "threatmodel/system_form.html", {"form": form, "creating": True}, status=400 if form.errors else 200
    )


@login_required
def system_edit(request: HttpRequest, team: str, slug: str) -> HttpResponse:
    """Edit a system's inventory entry."""
    system = selectors.system_get(user=request.user, team_slug=team, slug=slug, capability=Capability.EDIT)
    form = SystemForm(request.POST or None, instance=system)
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in form.Meta.fields}
        if not data.get("slug"):
            data["slug"] = system.slug
        try:
            # The form mutated the instance while validating; the service re-reads it from the database.
            system = services.system_update(actor=request.user, system=system, **data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Saved {system.name}.")
            return redirect(system)
    return render(
        request,
        "threatmodel/system_form.html",
        {"form": form, "system": system, "creating": False},
        status=400 if form.errors else 200,
    )
