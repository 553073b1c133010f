"""Template context shared by every page."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

# (label, URL name, the path prefix that marks it active). Entries whose page is not
# installed yet are left out rather than linking to an empty page.
NAVIGATION = [
    ("Systems", "threatmodel:system-list", "/systems/"),
    ("Evaluations", "evaluations:run-list", "/evaluations/"),
    ("KPIs", "kpis:dashboard", "/kpis/"),
    ("Incidents", "incidents:incident-list", "/incidents/"),
    ("Audit log", "audit:log", "/audit/"),
    ("Teams", "accounts:team-list", "/teams/"),
]


def navigation(request: HttpRequest) -> dict:
    """The main navigation, with the current section marked."""
    items = []
    for label, url_name, prefix in NAVIGATION:
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        items.append({"label": label, "url": url, "active": request.path.startswith(prefix)})
    return {"nav_items": items}
