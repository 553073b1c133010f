"""Small, dependency-free SVG charts for pages and PDFs: every label is escaped, output is a string.

Templates mark the result safe (``{{ chart|safe }}``): it is built only from numbers and escaped text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from django.utils.html import escape

PALETTE = ("#1d4e89", "#b42318", "#1e7b45", "#b7791f", "#6b46c1", "#0f766e")
_FONT = 'font-family="system-ui, DejaVu Sans, sans-serif" font-size="11"'


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values from ``low`` to ``high``."""
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks, value = [], first
    while value <= high + step * 1e-6:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def line_chart(
    series: Sequence[dict[str, Any]],
    *,
    x_label: str = "",
    y_label: str = "",
    title: str = "",
    y_range: tuple[float, float] | None = None,
    width: int = 520,
    height: int = 300,
) -> str:
    """Lines with markers; ``series`` is ``[{"label": str, "points": [(x, y), ...]}, ...]`` (None y skipped)."""
    points = [(x, y) for s in series for x, y in s["points"] if y is not None]
    left, right, top, bottom = 56, 16, 28 if title else 12, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [p[0] for p in points] or [0.0, 1.0]
    ys = [p[1] for p in points] or [0.0, 1.0]
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_hi = x_lo + 1.0
    y_lo, y_hi = y_range if y_range else (min(ys), max(ys))
    if y_hi == y_lo:
        y_hi = y_lo + 1.0

    def sx(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title or y_label)}" class="chart">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
    ]
    if title:
        parts.append(f'<text x="{left}" y="16" {_FONT} font-weight="600">{escape(title)}</text>')
    for tick in _ticks(y_lo, y_hi):
        y = sy(tick)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e9ee"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>{_fmt(tick)}</text>')
    for tick in _ticks(x_lo, x_hi):
        x = sx(tick)
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" {_FONT}>{_fmt(tick)}</text>')
    parts.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#b9c2cc"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" {_FONT}>{escape(x_label)}</text>'
        f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" {_FONT} '
        f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{escape(y_label)}</text>'
    )
    for index, s in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        coords = [(sx(x), sy(y)) for x, y in s["points"] if y is not None]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for (x, y), (vx, vy) in zip(coords, [p for p in s["points"] if p[1] is not None], strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"><title>{escape(s["label"])}: '
                f"{_fmt(vx)} → {_fmt(vy)}</title></circle>"
            )
        if len(series) > 1 or s.get("label"):
            ly = top + 14 + 14 * index
            parts.append(
                f'<rect x="{left + plot_w - 150}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                f'<text x="{left + plot_w - 135}" y="{ly}" {_FONT}>{escape(s["label"])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    bars: Sequence[tuple[str, float | None]],
    *,
    title: str = "",
    y_label: str = "",
    y_range: tuple[float, float] = (0.0, 1.0),
    width: int = 520,
    height: int = 260,
) -> str:
    """Vertical bars, one per ``(label, value)``; None values are shown as 'n/a'."""
    left, right, top, bottom = 48, 12, 28 if title else 12, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = y_range
    slot = plot_w / max(1, len(bars))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title or y_label)}" class="chart">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
    ]
    if title:
        parts.append(f'<text x="{left}" y="16" {_FONT} font-weight="600">{escape(title)}</text>')
    for tick in _ticks(lo, hi):
        y = top + plot_h - (tick - lo) / (hi - lo) * plot_h
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e9ee"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>{_fmt(tick)}</text>')
    for index, (label, value) in enumerate(bars):
        x = left + index * slot + slot * 0.15
        if value is None:
            parts.append(f'<text x="{x:.1f}" y="{top + plot_h - 4}" {_FONT}>n/a</text>')
        else:
            h = max(0.0, min(1.0, (value - lo) / (hi - lo))) * plot_h
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[0]}"><title>{escape(label)}: {_fmt(value)}</title></rect>'
            )
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{top + plot_h + 14}" text-anchor="middle" {_FONT}>'
            f"{escape(str(label)[:12])}</text>"
        )
    parts.append(
        f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" {_FONT} '
        f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{escape(y_label)}</text></svg>'
    )
    return "".join(parts)


def image_thumbnail(
    pixels: Sequence[Sequence[float]], *, bounds: tuple[float, float] = (0.0, 1.0), scale: int = 6, label: str = ""
) -> str:
    """A grey-scale image (rows of values within ``bounds``) as tiny SVG rects; dark means high."""
    rows = len(pixels)
    cols = len(pixels[0]) if rows else 0
    lo, hi = bounds
    span = (hi - lo) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {cols} {rows}" width="{cols * scale}" '
        f'height="{rows * scale}" shape-rendering="crispEdges" role="img" aria-label="{escape(label)}" '
        'class="thumb">'
    ]
    if label:
        parts.append(f"<title>{escape(label)}</title>")
    for r, row in enumerate(pixels):
        for c, value in enumerate(row):
            level = max(0.0, min(1.0, (float(value) - lo) / span))
            grey = round(255 * (1.0 - level))
            parts.append(f'<rect x="{c}" y="{r}" width="1" height="1" fill="rgb({grey},{grey},{grey})"/>')
    parts.append("</svg>")
    return "".join(parts)


def trend_chart(
    points: Sequence[tuple[Any, float]],
    *,
    title: str = "",
    unit: str = "",
    bands: tuple[float, float] | None = None,
    higher_is_better: bool = True,
    width: int = 520,
    height: int = 200,
) -> str:
    """A time series (``[(datetime, value), ...]``) with green/amber/red background bands from ``bands``.

    ``bands`` is (green bound, amber bound); the area on the good side of the green bound
    is tinted green, between the bounds amber, beyond the amber bound red.
    """
    left, right, top, bottom = 56, 16, 28 if title else 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    times = [p[0].timestamp() for p in points]
    values = [p[1] for p in points]
    t_lo, t_hi = (min(times), max(times)) if times else (0.0, 1.0)
    if t_hi == t_lo:
        t_lo, t_hi = t_lo - 43200, t_hi + 43200
    candidates = values + (list(bands) if bands else [])
    v_lo, v_hi = (min(candidates), max(candidates)) if candidates else (0.0, 1.0)
    pad = (v_hi - v_lo) * 0.1 or max(abs(v_hi) * 0.1, 0.5)
    v_lo, v_hi = v_lo - pad, v_hi + pad
    if v_lo < 0 <= min(candidates or [0]):
        v_lo = 0.0

    def sx(t: float) -> float:
        return left + (t - t_lo) / (t_hi - t_lo) * plot_w

    def sy(v: float) -> float:
        return top + plot_h - (v - v_lo) / (v_hi - v_lo) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title or "trend")}" class="chart">'
    ]
    if title:
        parts.append(f'<text x="{left}" y="16" {_FONT} font-weight="600">{escape(title)}</text>')
    if bands:
        green, amber = bands
        zones = (
            [(green, v_hi, "#dcf3e5"), (amber, green, "#fff1d6"), (v_lo, amber, "#fde2e1")]
            if higher_is_better
            else [(v_lo, green, "#dcf3e5"), (green, amber, "#fff1d6"), (amber, v_hi, "#fde2e1")]
        )
        for low, high, colour in zones:
            low, high = max(low, v_lo), min(high, v_hi)
            if high > low:
                parts.append(
                    f'<rect x="{left}" y="{sy(high):.1f}" width="{plot_w}" height="{sy(low) - sy(high):.1f}" '
                    f'fill="{colour}"/>'
                )
    for tick in _ticks(v_lo, v_hi, 4):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{sy(tick):.1f}" y2="{sy(tick):.1f}" '
            'stroke="#d9dee4" stroke-width="0.5"/>'
        )
        parts.append(f'<text x="{left - 6}" y="{sy(tick) + 4:.1f}" text-anchor="end" {_FONT}>{_fmt(tick)}</text>')
    if points:
        import datetime as _dt

        # The end labels are anchored inwards so a date at the plot's edge is never clipped by the frame.
        # Under two days apart, three dates would repeat one another: show the hour as well.
        fmt = "%Y-%m-%d" if t_hi - t_lo >= 2 * 86400 else "%m-%d %H:%M"
        for t, anchor in ((t_lo, "start"), ((t_lo + t_hi) / 2, "middle"), (t_hi, "end")):
            label = _dt.datetime.fromtimestamp(t, tz=_dt.UTC).strftime(fmt)
            parts.append(f'<text x="{sx(t):.1f}" y="{height - 12}" text-anchor="{anchor}" {_FONT}>{label}</text>')
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{sx(t):.1f},{sy(v):.1f}"
            for i, (t, v) in enumerate(zip(times, values, strict=True))
        )
        parts.append(f'<path d="{path}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
        for t, v in zip(times, values, strict=True):
            parts.append(
                f'<circle cx="{sx(t):.1f}" cy="{sy(v):.1f}" r="3" fill="{PALETTE[0]}"><title>'
                f"{escape(_fmt(v))} {escape(unit)}</title></circle>"
            )
    else:
        parts.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" {_FONT}>'
            "no measurements yet</text>"
        )
    parts.append(
        f'<text x="14" y="{top + plot_h / 2:.1f}" transform="rotate(-90 14 {top + plot_h / 2:.1f})" '
        f'text-anchor="middle" {_FONT}>{escape(unit)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
