"""Charts of the monitoring page, from logged detector scores (``garrison.charts``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from garrison.charts import bar_chart, line_chart


def score_chart(logs: list[Any], *, prada_threshold: float = 0.92, entropy_max_fraction: float = 0.3) -> str:
    """PRADA's W and the uncertain-answer fraction of each client against its query count."""
    by_key: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: {"prada": [], "entropy": []})
    for log in reversed(logs):  # oldest first
        name = f"{log.key.owner[:12]} {log.key.prefix[4:8]}" if log.key_id else "deleted key"
        if log.prada_w is not None:
            by_key[name]["prada"].append((log.key_queries, log.prada_w))
        if log.uncertain_fraction is not None:
            by_key[name]["entropy"].append((log.key_queries, log.uncertain_fraction))
    series = []
    for name, points in by_key.items():
        if points["prada"]:
            series.append({"label": f"{name} W", "points": points["prada"]})
        if points["entropy"]:
            series.append({"label": f"{name} unsure", "points": points["entropy"]})
    if not series:
        return ""
    return line_chart(
        series,
        x_label="the client's queries",
        y_label="score",
        y_range=(0.0, 1.0),
        title=f"Per client: PRADA W (flags < {prada_threshold:g}), unsure-answer fraction (flags > "
        f"{entropy_max_fraction:g})",
        width=760,
    )


def volume_chart(keys: list[Any]) -> str:
    """Inputs answered today per key."""
    bars = [(f"{key.owner[:14]} ({key.prefix[4:8]})", key.inputs_today) for key in keys if not key.is_revoked]
    if not bars:
        return ""
    top = max([value for _, value in bars] + [1])
    return bar_chart(bars, title="Inputs answered today per key", y_label="inputs", y_range=(0.0, top * 1.1))
