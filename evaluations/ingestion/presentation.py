"""What the ingestion pages show: the label chart, the flagged records and the provenance graph."""

from __future__ import annotations

from typing import Any

from django.utils.html import escape

from evaluations.ingestion.models import BatchStatus, DatasetVersionRecord, IngestionBatch
from evaluations.ingestion.parsing import BatchInputError, parse_file
from evaluations.storage import read_blob
from garrison.charts import PALETTE

_FONT = 'font-family="system-ui, DejaVu Sans, sans-serif" font-size="11"'
MAX_FLAGGED_SHOWN = 300


def label_chart(class_names: list[str], base: list[float], batch: list[float], *, title: str) -> str:
    """Grouped bars: each class's share in the accepted data next to its share in the batch (SVG)."""
    width, height, left, top, bottom = 520, 250, 48, 30, 44
    plot_w, plot_h = width - left - 12, height - top - bottom
    slot = plot_w / max(1, len(class_names))
    hi = max([0.1, *base, *batch])
    hi = min(1.0, (int(hi * 10) + 1) / 10)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" class="chart" id="label-chart">',
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{left}" y="16" {_FONT} font-weight="600">{escape(title)}</text>',
    ]
    for step in range(6):
        value = hi * step / 5
        y = top + plot_h - value / hi * plot_h
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e9ee"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>{value:.0%}</text>')
    for i, name in enumerate(class_names):
        for j, (series, value) in enumerate((("accepted", base[i]), ("batch", batch[i]))):
            h = value / hi * plot_h
            x = left + i * slot + slot * (0.12 + 0.38 * j)
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.36:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[j]}"><title>{escape(name)} ({series}): {value:.1%}</title></rect>'
            )
        parts.append(
            f'<text x="{left + (i + 0.5) * slot:.1f}" y="{top + plot_h + 14}" text-anchor="middle" {_FONT}>'
            f"{escape(str(name)[:14])}</text>"
        )
    for j, series in enumerate(("accepted data", "batch")):
        x = left + plot_w - 200 + j * 100
        parts.append(
            f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{PALETTE[j]}"/>'
            f'<text x="{x + 14}" y="{height - 5}" {_FONT}>{series}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def batch_chart(batch: IngestionBatch) -> str | None:
    """The label-distribution chart of a checked batch (None before the checks ran)."""
    shift = next((c for c in (batch.report or {}).get("checks", []) if c["name"] == "label_shift"), None)
    if shift is None:
        return None
    data = shift["data"]
    return label_chart(
        data["class_names"],
        data["base_fraction"],
        data["batch_fraction"],
        title="Label distribution: accepted data vs batch",
    )


def flagged_records(batch: IngestionBatch) -> list[dict[str, Any]]:
    """The flagged records with the checks that flagged them (at most ``MAX_FLAGGED_SHOWN``)."""
    flagged = batch.flagged
    if not flagged or batch.records_blob_id is None:
        return []
    try:
        records = parse_file(read_blob(batch.records_blob), format=batch.policy.format, schema=batch.policy.schema)
    except (BatchInputError, OSError):
        return []
    rows = []
    for key, checks in list(flagged.items())[:MAX_FLAGGED_SHOWN]:
        index = int(key)
        if 0 <= index < len(records):
            rows.append({**records.record(index), "checks": checks})
    return rows


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


_BATCH_FILL = {
    BatchStatus.ACCEPTED: "#e3f4ea",
    BatchStatus.REJECTED: "#fde2e1",
    BatchStatus.INVALID: "#fde2e1",
    BatchStatus.HELD: "#fff4d6",
}


def provenance_dot(records: list[DatasetVersionRecord], batches: list[IngestionBatch]) -> str:
    """DOT source: accepted versions (boxes) chained through the batches merged into them (notes)."""
    lines = [
        "digraph provenance {",
        '  graph [rankdir=LR, fontname="DejaVu Sans", fontsize=11, nodesep=0.4, ranksep=0.5, bgcolor="white"];',
        '  node [fontname="DejaVu Sans", fontsize=10, style="filled,rounded", shape=box, fillcolor="#eaf1fb", '
        'color="#1d4e89"];',
        '  edge [fontname="DejaVu Sans", fontsize=9, color="#4a5563"];',
    ]
    for rec in records:
        ds = rec.dataset
        label = _label(
            f"{ds.name} v{ds.version}",
            f"{rec.n_records} records · {rec.source.replace('_', ' ')}",
            f"sha256 {ds.sha256[:12]}",
        )
        lines.append(f'  d{ds.pk} [label={label}, URL="#v{ds.version}"];')
    for batch in batches:
        fill = _BATCH_FILL.get(batch.status, "#f3f4f6")
        label = _label(f"batch #{batch.pk}", f"{batch.n_records} records · {batch.get_status_display()}")
        lines.append(
            f'  b{batch.pk} [label={label}, shape=note, style=filled, fillcolor="{fill}", '
            f'URL="{batch.get_absolute_url()}"];'
        )
        if batch.base_id:
            lines.append(f'  d{batch.base_id} -> b{batch.pk} [style=dashed, label="checked against"];')
    for rec in records:
        for parent in rec.parents.all():
            via = f"b{rec.batch_id}" if rec.batch_id else None
            if via:
                lines.append(f'  {via} -> d{rec.dataset_id} [label="merged"];')
            else:
                lines.append(f"  d{parent.pk} -> d{rec.dataset_id};")
    lines.append("}")
    return "\n".join(lines)


def _label(*lines: str) -> str:
    """A quoted DOT label of escaped lines joined by DOT line breaks."""
    return '"' + "\\n".join(_dot_quote(line)[1:-1] for line in lines) + '"'


def provenance_svg(records: list[DatasetVersionRecord], batches: list[IngestionBatch]) -> tuple[str, str]:
    """(SVG, error message): the provenance graph drawn by Graphviz, or why it could not be drawn."""
    from threatmodel.dfd import DiagramUnavailable, render_svg

    try:
        svg = render_svg(provenance_dot(records, batches))
    except DiagramUnavailable as exc:
        return "", str(exc)
    return svg.replace('aria-label="Data-flow diagram"', 'aria-label="Dataset provenance graph"', 1), ""
