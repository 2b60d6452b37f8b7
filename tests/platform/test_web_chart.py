"""The Pareto chart's geometry and the pages' number formats, as plain functions."""

from __future__ import annotations

import pytest
from web.chart import (
    Point,
    accuracy_ticks,
    build_chart,
    latency_label,
    latency_range,
    latency_ticks,
    radius,
)
from web.templatetags.arena_format import megabytes, milliseconds, per_mb, percent


def point(sid: int, accuracy: float, latency_ms: float, size_bytes: int, **extra) -> Point:
    return Point(sid, f"user{sid}", accuracy, latency_ms, size_bytes, **extra)


def test_more_accurate_is_higher_faster_is_further_left_bigger_is_larger():
    chart = build_chart([point(1, 0.95, 0.5, 40_000), point(2, 0.90, 5.0, 10_000),
                         point(3, 0.99, 50.0, 160_000, on_front=True)])
    by_id = {m.point.submission_id: m for m in chart.markers}
    assert by_id[3].y < by_id[1].y < by_id[2].y  # SVG y grows downwards
    assert by_id[1].x < by_id[2].x < by_id[3].x
    assert by_id[2].r < by_id[1].r < by_id[3].r == 20.0
    # Area, not radius, follows size: 4x the bytes is 2x the radius.
    assert by_id[1].r == pytest.approx(by_id[3].r / 2, abs=0.1)
    for marker in chart.markers:
        assert chart.plot_left <= marker.x <= chart.plot_right
        assert chart.plot_top <= marker.y <= chart.plot_bottom
    assert [m.point.submission_id for m in chart.markers][-1] == 2  # small ones drawn last, on top


def test_axes_cover_the_points_in_whole_decades_and_tenths():
    assert latency_range([0.03, 7.0]) == (0.01, 10.0)
    assert latency_range([2.0, 2.0]) == (1.0, 10.0)
    assert latency_range([]) == (1.0, 10.0)
    assert latency_ticks(1.0, 10.0) == [1, 2, 5, 10]
    assert accuracy_ticks(0.8) == [0.8, 0.85, 0.9, 0.95, 1.0]
    assert accuracy_ticks(0.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    chart = build_chart([point(1, 0.93, 0.05, 1000), point(2, 0.97, 40.0, 1000)])
    labels = [t.text for t in chart.x_ticks if t.text]
    assert labels == ["0.01 ms", "0.1 ms", "1 ms", "10 ms", "100 ms"]  # 4 decades: 10^k only
    assert [t.text for t in chart.y_ticks] == ["90%", "92%", "94%", "96%", "98%", "100%"]


def test_an_empty_board_still_draws_axes():
    chart = build_chart([])
    assert chart.markers == [] and chart.x_ticks and chart.y_ticks
    assert radius(0, []) == 5.0


def test_number_formats_use_decimal_megabytes():
    assert percent(0.98765) == "98.77%" and percent(None) == "—"
    assert milliseconds(0.0123) == "0.012 ms" and milliseconds(12.345) == "12.35 ms"
    assert milliseconds(0.000088) == "0.088 µs" and milliseconds(0.00952) == "9.52 µs"
    assert latency_label(0.00001) == "0.01 µs" and latency_label(0.0005) == "0.5 µs"
    assert latency_label(0.001) == "0.001 ms" and latency_label(20.0) == "20 ms"
    assert megabytes(999) == "999 B" and megabytes(42_000) == "42.0 kB"
    assert megabytes(10_000_000) == "10.00 MB"
    assert per_mb(32.66) == "32.7 per MB" and per_mb(12_345.6) == "12,346 per MB"


def test_only_powers_of_ten_are_major_ticks():
    chart = build_chart([point(1, 0.9, 0.002, 1000), point(2, 0.95, 0.02, 1000)])
    assert [(t.text, t.major) for t in chart.x_ticks] == [
        ("0.001 ms", True), ("0.002 ms", False), ("0.005 ms", False), ("0.01 ms", True),
        ("0.02 ms", False), ("0.05 ms", False), ("0.1 ms", True)]


def test_the_axes_fit_every_tracks_data_bits_per_character_on_a_language_track():
    from types import SimpleNamespace

    language = SimpleNamespace(is_language_model=True)
    points = [point(1, 0.31, 12.0, 300_000, bits_per_char=2.41),
              point(2, 0.45, 40.0, 900_000, bits_per_char=1.92, on_front=True),
              point(3, 0.38, 25.0, 500_000, bits_per_char=2.10)]
    chart = build_chart(points, task=language)
    assert chart.quality_label.startswith("bits per character")
    by_id = {m.point.submission_id: m for m in chart.markers}
    assert by_id[2].y < by_id[3].y < by_id[1].y  # fewer bits is higher
    ys = [m.y for m in chart.markers]
    assert max(ys) - min(ys) > chart.plot_height / 2  # spread over the plot, not piled up
    assert all(chart.plot_top <= y <= chart.plot_bottom for y in ys)
    assert [t.text for t in chart.y_ticks][0] in ("1.8", "1.9") and by_id[2].name == "user2"
    # The same models by accuracy: the axis spans their 30%..50%, not 30%..100%.
    plain = build_chart(points)
    assert [t.text for t in plain.y_ticks][0] == "30%" and plain.y_ticks[-1].text == "50%"
    ys = [m.y for m in plain.markers]
    assert max(ys) - min(ys) > plain.plot_height / 2


def test_scores_over_time_are_steps_at_each_improvement():
    from datetime import UTC, datetime, timedelta

    from web.chart import build_history, time_ticks

    t0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    lines = [{"name": "track best", "is_best": True,
              "points": [(t0, 0.90), (t0 + timedelta(hours=5), 0.95)]},
             {"name": "ann", "points": [(t0 + timedelta(hours=1), 0.92)]},
             {"name": "your submissions", "is_mine": True, "points": [
                 (t0 + timedelta(hours=1), 0.92), (t0 + timedelta(hours=2), 0.80)]}]
    chart = build_history(lines, now=t0 + timedelta(hours=10))
    best, ann, mine = chart.lines
    assert best.css == "best" and ann.css == "series-1" and mine.css == "mine"
    assert best.path.startswith(f"M {float(chart.plot_left)} ") and " H " in best.path
    assert best.path.endswith(f"H {float(chart.plot_right)}")  # held until now
    assert mine.path == "" and len(mine.dots) == 2  # each submission on its own
    assert best.dots[1][1] < best.dots[0][1]  # 95% above 90%
    assert all(chart.plot_left <= x <= chart.plot_right for x, _, _ in mine.dots)
    assert "92.00%" in mine.dots[0][2] and "01 Dec 2026, 10:00 UTC" in mine.dots[0][2]
    assert [text for _, text in time_ticks(t0, t0 + timedelta(hours=10))][:2] == [
        "1 Dec 10:00", "1 Dec 12:00"]
    assert chart.x_ticks[0].when.startswith("2026-12-01T10:00:00")  # the script localizes it
    assert build_history([]).empty


def test_one_time_format_and_a_countdown_in_words():
    from datetime import UTC, datetime, timedelta

    from web.templatetags.arena_format import time_left, when

    moment = datetime(2026, 12, 1, 21, 4, tzinfo=UTC)
    assert when(moment) == ('<time datetime="2026-12-01T21:04:00+00:00" data-when>'
                            "1 Dec 2026, 21:04 UTC</time>")
    assert time_left(moment, moment - timedelta(days=2, hours=3, minutes=9)) == "2 days 3 h"
    assert time_left(moment, moment - timedelta(hours=4, minutes=5)) == "4 h 05 min"
    assert time_left(moment, moment - timedelta(minutes=12, seconds=30)) == "12 min 30 s"
    assert time_left(moment, moment + timedelta(seconds=1)) == "0 s"
