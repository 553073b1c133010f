"""What a benchmark returns: Markdown tables, the bars it checks, and raw figures for JSON."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Bar", "BenchResult", "fmt_ms", "fmt_pct", "table", "write_doc_section"]


@dataclass(frozen=True)
class Bar:
    """One acceptance bar from the issue and whether this run met it."""

    name: str
    met: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "met": self.met, "detail": self.detail}


@dataclass
class BenchResult:
    """A benchmark's output."""

    name: str
    title: str
    tables: list[str] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        """The section for ``docs/benchmarks.md``."""
        parts = [f"### {self.title}", ""]
        for tbl in self.tables:
            parts += [tbl, ""]
        if self.bars:
            parts += ["| Bar | Met | Measured |", "|---|---|---|"]
            parts += [f"| {b.name} | {'yes' if b.met else '**no**'} | {b.detail} |" for b in self.bars]
            parts.append("")
        for note in self.notes:
            parts += [f"- {note}"]
        if self.notes:
            parts.append("")
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "title": self.title, "bars": [b.to_dict() for b in self.bars], "data": self.data}


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; the first column is left-aligned, the rest right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_ms(seconds: float) -> str:
    """Seconds as milliseconds with three significant figures."""
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def fmt_pct(fraction: float) -> str:
    """A fraction as a percentage with one decimal."""
    return f"{100 * fraction:.1f}%"


def write_doc_section(path: Path, name: str, text: str, *, before: str = "\n## Bars") -> None:
    """Replace this benchmark's marked section of ``path`` (``<!-- bench:NAME -->`` ... ``<!-- /bench:NAME -->``).

    Everything outside the markers is kept as it is. A section seen for the first time goes before the
    ``before`` heading (the hand-written bars and analysis), or at the end when there is none.
    """
    tag = re.escape(name)
    block = f"<!-- bench:{name} -->\n{text.strip()}\n<!-- /bench:{name} -->\n"
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(rf"<!-- bench:{tag} -->.*?<!-- /bench:{tag} -->\n?", re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current, count=1)
    elif before in current:
        head, tail = current.split(before, 1)
        updated = head.rstrip("\n") + "\n\n" + block + "\n" + before.lstrip("\n") + tail
    else:
        updated = current.rstrip("\n") + ("\n\n" if current else "") + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(updated, encoding="utf-8")
