"""KPI dashboards: the portfolio and each system's KPIs with trends, thresholds and the gate."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from garrison.accounts.roles import Capability
from garrison.accounts.selectors import capabilities_in, team_list
from garrison.charts import trend_chart
from kpis import selectors, services
from kpis.catalog import GROUPS, HIGHER, KPIS
from kpis.forms import GatePolicyForm, ThresholdForm
from kpis.models import GateDecision
from threatmodel.selectors import system_get

PORTFOLIO_PAGE_SIZE = 50
PORTFOLIO_CACHE_SECONDS = 600  # a bound on staleness for data loaded behind the services' back


@login_required
def portfolio(request: HttpRequest) -> HttpResponse:
    """Every visible system against every KPI, worst first.

    The table (filters, rows, pager) is cached per visible-team set, query string and
    portfolio generation, so a repeated page costs the generation read; any write that
    changes a row moves the generation on and the next request renders afresh.
    """
    key = selectors.portfolio_cache_key(user=request.user, query=request.GET)
    table = cache.get(key)
    if table is None:
        table = _portfolio_table(request)
        cache.set(key, table, PORTFOLIO_CACHE_SECONDS)
    return render(request, "kpis/portfolio.html", {"table": mark_safe(table)})  # noqa: S308 - our own render


def _portfolio_table(request: HttpRequest) -> str:
    team = request.GET.get("team", "")
    tier = request.GET.get("tier", "")
    rows = selectors.portfolio(user=request.user, team_slug=team, tier=int(tier) if tier.isdigit() else None)
    page = Paginator(rows, PORTFOLIO_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render_to_string(
        "kpis/_portfolio_table.html",
        {
            "page": page,
            "query": query.urlencode(),
            "kpis": KPIS,
            "groups": GROUPS,
            "teams": team_list(user=request.user),
            "team": team,
            "tier": tier,
        },
    )


def _dashboard_url(system) -> str:  # noqa: ANN001
    return reverse("kpis:system", kwargs={"team": system.team.slug, "slug": system.slug})


@login_required
def system_dashboard(request: HttpRequest, team: str, slug: str) -> HttpResponse:
    """A system's KPIs: value vs threshold, trend chart and the events that moved each."""
    system = system_get(user=request.user, team_slug=team, slug=slug)
    cells = selectors.system_cells(user=request.user, system=system)
    series = selectors.trends(user=request.user, system=system)
    charts = {
        cell.definition.key: trend_chart(
            [(m.measured_at, m.value) for m in series.get(cell.definition.key, [])],
            title=cell.definition.name,
            unit=cell.definition.unit,
            bands=cell.bounds,
            higher_is_better=cell.definition.direction == HIGHER,
        )
        for cell in cells
        if series.get(cell.definition.key)
    }
    events = sorted((m for points in series.values() for m in points), key=lambda m: m.measured_at, reverse=True)
    caps = capabilities_in(request.user, system.team_id)
    policy = selectors.gate_policy_for(system)
    return render(
        request,
        "kpis/system.html",
        {
            "system": system,
            "cells": cells,
            "charts": charts,
            "events": events[:30],
            "can_approve": Capability.APPROVE in caps,
            "threshold_form": ThresholdForm(systems=[system]),
            "policy": policy,
            "policy_form": GatePolicyForm(initial={name: getattr(policy, name) for name in GatePolicyForm.base_fields}),
            "decisions": GateDecision.objects.filter(system=system).order_by("-created_at")[:10],
        },
    )


@login_required
@require_POST
def threshold_set(request: HttpRequest, team: str, slug: str) -> HttpResponse:
    """Set a threshold for the system's tier or override it for the system (approvers)."""
    system = system_get(user=request.user, team_slug=team, slug=slug, capability=Capability.APPROVE)
    form = ThresholdForm(request.POST, systems=[system])
    if form.is_valid():
        data = dict(form.cleaned_data)
        scope = data.pop("scope")
        try:
            services.threshold_set(actor=request.user, team=system.team, **data, **scope)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Threshold saved.")
    else:
        messages.error(request, "Give a KPI, a scope and both bounds as numbers.")
    return redirect(_dashboard_url(system) + "#thresholds")


@login_required
@require_POST
def gate_policy_set(request: HttpRequest, team: str, slug: str) -> HttpResponse:
    """Save the system's gate policy (approvers)."""
    system = system_get(user=request.user, team_slug=team, slug=slug, capability=Capability.APPROVE)
    form = GatePolicyForm(request.POST)
    if form.is_valid():
        try:
            services.gate_policy_set(actor=request.user, system=system, **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Gate policy saved.")
    return redirect(_dashboard_url(system) + "#gate")
