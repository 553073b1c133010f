"""What the incidents app knows about an evaluation run, for the run's page.

``evaluations`` may not import ``incidents`` (DESIGN.md: dependencies point left), so its run page loads
this tag library instead: the incidents opened from the run and the remediation actions it verifies.
"""

from __future__ import annotations

from typing import Any

from django import template

from garrison.accounts.selectors import team_ids_for
from incidents.models import Evidence, Incident, RemediationAction

register = template.Library()


@register.inclusion_tag("incidents/_run_incidents.html", takes_context=True)
def run_incidents(context: dict[str, Any], run: Any) -> dict[str, Any]:
    """The incidents opened from ``run`` (with the flagged messages they quote) and the actions it verifies.

    Only incidents of the viewer's teams count.
    """
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"opened": [], "actions": [], "quoted_messages": [], "quoted": None}
    teams = team_ids_for(user)
    opened_ids = Evidence.objects.filter(kind="evaluation_run", reference=f"evaluation run {run.pk}").values(
        "incident_id"
    )
    opened = list(Incident.objects.filter(pk__in=opened_ids, team_id__in=teams).order_by("number"))
    quoted = Evidence.objects.filter(
        incident__in=opened, kind="flagged_samples", reference__startswith=f"evaluation run {run.pk}:"
    ).first()
    actions = list(
        RemediationAction.objects.filter(run_id=run.pk, incident__team_id__in=teams)
        .select_related("incident")
        .order_by("incident__number", "id")
    )
    messages = [m for m in (quoted.metrics.get("messages", []) if quoted else []) if isinstance(m, str)]
    return {"opened": opened, "actions": actions, "quoted_messages": messages, "quoted": quoted}
