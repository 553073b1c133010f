"""The KPI trend chart: its date labels stay inside the frame and say something."""

from __future__ import annotations

import datetime as dt
import re

from garrison.charts import trend_chart

NOW = dt.datetime(2026, 11, 30, 4, 24, tzinfo=dt.UTC)


def test_trend_chart_anchors_its_end_dates_inwards():
    svg = trend_chart([(NOW - dt.timedelta(days=10), 0.5), (NOW, 0.75)], unit="ratio")
    assert re.search(r'text-anchor="start"[^>]*>2026-11-20<', svg)
    assert re.search(r'text-anchor="middle"[^>]*>2026-11-25<', svg)
    assert re.search(r'text-anchor="end"[^>]*>2026-11-30<', svg)


def test_trend_chart_over_less_than_two_days_shows_hours_so_labels_differ():
    svg = trend_chart([(NOW - dt.timedelta(hours=20), 0.5), (NOW, 0.75)], unit="ratio")
    assert ">11-29 08:24<" in svg and ">11-30 04:24<" in svg and ">11-29 18:24<" in svg
