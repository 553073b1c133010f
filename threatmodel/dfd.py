"""Data-flow diagrams as SVG, drawn by Graphviz with trust boundaries as clusters.

The SVG is built from escaped DOT and Graphviz escapes text in its output, so it can
be inlined in pages and PDFs. When Graphviz is missing the caller gets a clear error.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from threatmodel.models import Component, DataFlow, TrustBoundary

DOT_TIMEOUT_SECONDS = 20

# Shapes follow DFD conventions: external entities as boxes, processes as rounded boxes,
# stores as cylinders.
SHAPES = {
    "data_source": "cylinder",
    "feature_store": "cylinder",
    "model_registry": "cylinder",
    "model_artifact": "note",
    "client": "box",
    "human_reviewer": "box",
    "third_party_asset": "component",
}
FILLS = {"client": "#fdf2e9", "human_reviewer": "#fdf2e9", "third_party_asset": "#f5eef8"}


class DiagramUnavailable(RuntimeError):
    """Graphviz is not installed or failed."""


def _escape(text: str) -> str:
    """Text safe inside a quoted DOT string."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _quote(text: str) -> str:
    return f'"{_escape(text)}"'


def to_dot(*, boundaries: list[TrustBoundary], components: list[Component], flows: list[DataFlow]) -> str:
    """The DOT source of the diagram."""
    lines = [
        "digraph dfd {",
        # Left to right reads best for short chains; longer ones go top to bottom to stay legible.
        f'  graph [rankdir={"LR" if len(components) <= 4 else "TB"}, fontname="DejaVu Sans", fontsize=11, '
        'nodesep=0.5, ranksep=0.6, bgcolor="white"];',
        '  node [fontname="DejaVu Sans", fontsize=10, style="filled,rounded", shape=box, fillcolor="#eaf1fb", '
        'color="#1d4e89"];',
        '  edge [fontname="DejaVu Sans", fontsize=9, color="#4a5563"];',
    ]

    def node(component: Component) -> str:
        shape = SHAPES.get(component.component_type, "box")
        fill = FILLS.get(component.component_type, "#eaf1fb")
        # DOT's \\n is a line break inside the label; both halves are escaped separately.
        label = f'"{_escape(component.name)}\\n({_escape(component.get_component_type_display())})"'
        style = "filled" if shape != "box" or component.component_type in FILLS else "filled,rounded"
        return f'    c{component.pk} [label={label}, shape={shape}, fillcolor="{fill}", style="{style}"];'

    for boundary in boundaries:
        lines.append(f"  subgraph cluster_b{boundary.pk} {{")
        lines.append(f'    label={_quote(boundary.name)}; style="dashed"; color="#b42318"; fontcolor="#b42318";')
        lines.extend(node(c) for c in components if c.boundary_id == boundary.pk)
        lines.append("  }")
    lines.extend(node(c) for c in components if c.boundary_id is None)
    for flow in flows:
        label = flow.data + (f" [{flow.protocol}]" if flow.protocol else "")
        style = "" if flow.authenticated else ', style="dashed", color="#b42318"'
        lines.append(f"  c{flow.source_id} -> c{flow.target_id} [label={_quote(label)}{style}];")
    lines.append("}")
    return "\n".join(lines)


def render_svg(dot_source: str) -> str:
    """Run Graphviz and return the SVG element (no XML prolog, so it can be inlined)."""
    dot = shutil.which("dot")
    if dot is None:
        raise DiagramUnavailable("Graphviz is not installed (apt-get install graphviz; `make run` installs it).")
    try:
        result = subprocess.run(
            [dot, "-Tsvg"], input=dot_source, capture_output=True, text=True, timeout=DOT_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise DiagramUnavailable("Graphviz took too long to lay out this diagram.") from exc
    if result.returncode != 0:
        raise DiagramUnavailable(f"Graphviz failed: {result.stderr.strip()[:200]}")
    svg = result.stdout
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    # Comments carry node ids only; drop them. The natural size is kept; CSS only shrinks it to fit.
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    return svg.replace("<svg ", '<svg class="dfd" role="img" aria-label="Data-flow diagram" ', 1)


def diagram_svg(*, boundaries: list[TrustBoundary], components: list[Component], flows: list[DataFlow]) -> str:
    """The data-flow diagram of a version as inline SVG."""
    return render_svg(to_dot(boundaries=boundaries, components=components, flows=flows))
