"""The portfolio's table rows, rendered in one pass from each system's precomputed status row.

A page shows 50 systems x 22 KPIs; rendering 1,100 cells through nested template tags
cost more than the whole page may take, so these tags join precomputed, escaped strings
instead. The markup is the one the template produced.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from django import template
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from kpis.catalog import KPIS, UNKNOWN
from kpis.selectors import PortfolioRow

register = template.Library()

# (key, escaped name, escaped unit) per column, in catalog order.
_COLUMNS = tuple((d.key, escape(d.name), escape(d.unit)) for d in KPIS)
_UNMEASURED = {"s": UNKNOWN}


def cells_html(cells: dict[str, dict]) -> str:
    """One ``<td>`` per KPI: the status colour, the short value, and a title with the value, unit and status."""
    parts = []
    for key, name, unit in _COLUMNS:
        cell = cells.get(key, _UNMEASURED)
        status = escape(str(cell["s"]))
        if "t" in cell:
            parts.append(
                f'<td class="dot"><span class="kpi-{status}" title="{name}: {escape(cell["l"])} {unit} ({status})">'
                f"{escape(cell['t'])}</span></td>"
            )
        else:
            parts.append(f'<td class="dot"><span class="kpi-{status}" title="{name}: not measured">·</span></td>')
    return "".join(parts)


def row_html(row: PortfolioRow) -> str:
    """A system's table row: its name (a link to its KPI page), team, tier and KPI cells."""
    system = row.system
    url = reverse("kpis:system", kwargs={"team": system.team.slug, "slug": system.slug})
    tier = escape(str(system.criticality_tier))
    return (
        f'<tr>\n    <td><a href="{escape(url)}">{escape(system.name)}</a><br>'
        f'<span class="small muted">{escape(system.team.name)}</span></td>\n'
        f'    <td><span class="badge tier-{tier}">{tier}</span></td>\n'
        f"    {cells_html(row.cells)}\n  </tr>"
    )


@register.simple_tag
def portfolio_rows(rows: Iterable[PortfolioRow]) -> SafeString:
    """Every row of a page of the portfolio, or a row that says there are none."""
    html = "".join(row_html(row) for row in rows)
    return mark_safe(html or '<tr><td colspan="30" class="muted">No systems.</td></tr>')  # noqa: S308 - escaped above
