"""Server-side SVG charts: well-formed, labelled and escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - parses our own SVG output

from garrison.charts import bar_chart, image_thumbnail, line_chart


def test_a_line_chart_is_valid_svg_with_escaped_labels():
    svg = line_chart(
        [{"label": "<script>", "points": [(0, 0.9), (0.1, 0.5), (0.2, None)]}],
        x_label="eps & more",
        y_label="accuracy",
        title='A "title"',
        y_range=(0, 1),
    )
    root = ET.fromstring(svg)  # noqa: S314
    assert root.tag.endswith("svg")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert svg.count("<circle") == 2


def test_a_bar_chart_shows_missing_values_as_not_available():
    svg = bar_chart([("a", 0.5), ("b", None)], title="t")
    ET.fromstring(svg)  # noqa: S314
    assert "n/a" in svg


def test_an_image_thumbnail_has_one_rect_per_pixel():
    svg = image_thumbnail([[0.0, 1.0], [0.5, 0.25]], label="digit")
    ET.fromstring(svg)  # noqa: S314
    assert svg.count("<rect") == 4
