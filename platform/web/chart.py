"""Geometry of the pages' charts, as plain functions over plain numbers; the templates only draw
what these return.

- The Pareto chart: quality (up) against latency (right, log scale), marker area by size. Quality
  is accuracy, or bits per character on a language-model track (fewer is better, so that axis
  runs downwards: up is better on every track). Both axes fit the data.
- The history charts: a score over time, as steps at each improvement (the leaderboard's top
  participants and the track's best; a student's own submissions).

The front is over three metrics (accuracy, latency and size), so its points are highlighted rather
than joined by a line: a line through a 3-D front drawn in 2-D zigzags and misleads."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

WIDTH, HEIGHT = 800, 480
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 72, 24, 16, 56
MIN_RADIUS, MAX_RADIUS = 5.0, 20.0
FRONT_LABELS = 8  # the front's points get their participant's name, up to this many
HISTORY_WIDTH, HISTORY_HEIGHT = 800, 320


@dataclass(frozen=True)
class Point:
    """One submission to plot."""

    submission_id: int
    username: str
    accuracy: float
    latency_ms: float
    size_bytes: int
    is_baseline: bool = False
    on_front: bool = False
    label: str = ""
    title: str = ""  # what a pointer or a screen reader gets for this point
    bits_per_char: float | None = None


@dataclass(frozen=True)
class Marker:
    point: Point
    x: float
    y: float
    r: float
    name: str = ""  # a text label drawn beside it ("" for none)

    @property
    def name_on_left(self) -> bool:
        """Labels of points near the right edge go on their left, inside the chart."""
        return self.x > WIDTH - MARGIN_RIGHT - 110


@dataclass(frozen=True)
class Tick:
    position: float
    text: str
    major: bool = True  # narrow screens label the major ticks only
    when: str = ""  # a time axis: the moment (ISO), which the page's script shows in local time


@dataclass(frozen=True)
class Axes:
    """A plot area; ``quality_label`` names the y axis."""

    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    quality_label: str = "accuracy"

    @property
    def plot_width(self) -> float:
        return self.plot_right - self.plot_left

    @property
    def plot_height(self) -> float:
        return self.plot_bottom - self.plot_top


@dataclass(frozen=True)
class Chart(Axes):
    markers: list[Marker] = field(default_factory=list)


@dataclass(frozen=True)
class Line:
    name: str
    path: str  # the SVG path: steps through the points
    css: str  # "best", "mine" or "series-<n>"
    last_x: float = 0.0
    last_y: float = 0.0
    dots: list[tuple[float, float, str]] = field(default_factory=list)  # x, y, tooltip


@dataclass(frozen=True)
class HistoryChart(Axes):
    lines: list[Line] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(line.dots for line in self.lines)


def quality_of(point: Point, language: bool) -> float:
    return point.bits_per_char if language and point.bits_per_char is not None else point.accuracy


def build_chart(points: list[Point], width: int = WIDTH, height: int = HEIGHT,
                task=None) -> Chart:
    """Place ``points``: x = log10(latency), y = quality, radius grows with sqrt(size)."""
    language = bool(getattr(task, "is_language_model", False)) and any(
        p.bits_per_char is not None for p in points)
    left, right = MARGIN_LEFT, width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, height - MARGIN_BOTTOM
    lat_low, lat_high = latency_range([p.latency_ms for p in points])
    span = math.log10(lat_high) - math.log10(lat_low)
    values = [quality_of(p, language) for p in points]
    y_low, y_high, y_values = (bits_axis(values) if language else accuracy_axis(values))

    def x_of(latency_ms: float) -> float:
        return left + (math.log10(min(max(latency_ms, lat_low), lat_high)) - math.log10(lat_low)
                       ) / span * (right - left)

    def y_of(value: float) -> float:
        fraction = (value - y_low) / (y_high - y_low)
        if language:  # fewer bits is better: up
            fraction = 1.0 - fraction
        return bottom - min(max(fraction, 0.0), 1.0) * (bottom - top)

    sizes = [p.size_bytes for p in points]
    front = sorted((p for p in points if p.on_front), key=lambda p: p.latency_ms)[:FRONT_LABELS]
    named = {p.submission_id for p in front}
    markers = [Marker(p, round(x_of(p.latency_ms), 1), round(y_of(quality_of(p, language)), 1),
                      round(radius(p.size_bytes, sizes), 1),
                      p.username if p.submission_id in named else "") for p in points]
    return Chart(
        width=width, height=height, plot_left=left, plot_right=right, plot_top=top,
        plot_bottom=bottom, markers=sorted(markers, key=lambda m: -m.r),  # small ones on top
        x_ticks=[Tick(round(x_of(v), 1), latency_label(v) if labelled(v, span) else "",
                      is_power_of_ten(v)) for v in latency_ticks(lat_low, lat_high)],
        y_ticks=[Tick(round(y_of(v), 1), f"{v:.3g}" if language else percent_label(v))
                 for v in y_values],
        quality_label="bits per character (fewer is better)" if language else "accuracy",
    )


def percent_label(value: float) -> str:
    text = f"{value * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def latency_range(latencies: list[float]) -> tuple[float, float]:
    """Whole decades around the latencies (at least one decade wide)."""
    positive = [v for v in latencies if v > 0] or [1.0]
    low = 10 ** math.floor(math.log10(min(positive)))
    high = 10 ** math.ceil(math.log10(max(positive)))
    return low, max(high, low * 10)


def latency_ticks(low: float, high: float) -> list[float]:
    """1, 2 and 5 times each decade from ``low`` to ``high``."""
    ticks, decade = [], low
    while decade <= high * 1.0001:
        ticks += [decade * step for step in (1, 2, 5) if decade * step <= high * 1.0001]
        decade *= 10
    return ticks


def labelled(value: float, decades: float) -> bool:
    """Over more than two decades only the powers of ten get a label (the others would overlap)."""
    return decades <= 2 or is_power_of_ten(value)


def is_power_of_ten(value: float) -> bool:
    return math.isclose(math.log10(value), round(math.log10(value)), abs_tol=1e-9)


def latency_label(value: float) -> str:
    # Normalized latencies of fast models reach microseconds: "10 µs" reads, "1e-05 ms" does not.
    if value < 0.001 * 0.9999:  # below the 0.001 ms that reads well
        return f"{value * 1000:g} µs"
    return f"{value:g} ms"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round ticks (1, 2 or 5 times a power of ten apart) covering ``low``..``high``."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    ticks, value = [], first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def accuracy_axis(values: list[float]) -> tuple[float, float, list[float]]:
    """Accuracy from the tenth below the worst point to the tenth above the best (0..1 bounds)."""
    if not values:
        return 0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    low = max(0.0, math.floor(min(values) * 10 + 1e-9) / 10)
    high = min(1.0, math.ceil(max(values) * 10 - 1e-9) / 10)
    if high - low < 0.1:
        high = min(1.0, low + 0.1)
        low = high - 0.1
    return low, high, accuracy_ticks(low, high)


def accuracy_floor_of_axis(accuracies: list[float]) -> float:
    """Where the accuracy axis starts (kept for callers of the older API)."""
    return accuracy_axis(accuracies)[0]


def accuracy_ticks(low: float, high: float = 1.0) -> list[float]:
    span = high - low
    step = 0.02 if span <= 0.1 else 0.05 if span <= 0.3 else 0.1 if span <= 0.5 else 0.2
    count = round(span / step)
    return [round(low + i * step, 2) for i in range(count + 1)]


def bits_axis(values: list[float]) -> tuple[float, float, list[float]]:
    """Bits per character: round ticks around the points (at least half a bit wide)."""
    if not values:
        return 0.0, 8.0, nice_ticks(0.0, 8.0)
    low, high = min(values), max(values)
    if high - low < 0.5:
        middle = (high + low) / 2
        low, high = middle - 0.25, middle + 0.25
    ticks = nice_ticks(max(low, 0.0), high)
    return ticks[0], ticks[-1], ticks


def radius(size_bytes: int, sizes: list[int]) -> float:
    """Marker area proportional to size: radius by sqrt, the largest model at ``MAX_RADIUS``."""
    largest = max(sizes) if sizes else 0
    if largest <= 0:
        return MIN_RADIUS
    return max(MIN_RADIUS, MAX_RADIUS * math.sqrt(max(size_bytes, 0) / largest))


# --- scores over time ------------------------------------------------------------------------

def build_history(lines: list[dict], task=None, now: datetime | None = None,
                  width: int = HISTORY_WIDTH, height: int = HISTORY_HEIGHT) -> HistoryChart:
    """Steps through each line's ``points`` ((time, value) pairs, oldest first) to ``now``.

    ``lines`` as ``leaderboard.top_history`` returns them; a line ``is_best`` is drawn as the
    track's best, one ``is_mine`` as the student's own (dots at each submission)."""
    from django.utils import timezone

    language = bool(getattr(task, "is_language_model", False))
    left, right = MARGIN_LEFT, width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, height - MARGIN_BOTTOM
    everything = [p for line in lines for p in line["points"]]
    now = now or timezone.now()
    start = min((when for when, _ in everything), default=now - timedelta(days=1))
    end = max(now, start + timedelta(hours=1))
    values = [value for _, value in everything]
    y_low, y_high, y_values = bits_axis(values) if language else accuracy_axis(values)
    seconds = (end - start).total_seconds()

    def x_of(when: datetime) -> float:
        return round(left + (when - start).total_seconds() / seconds * (right - left), 1)

    def y_of(value: float) -> float:
        fraction = (value - y_low) / (y_high - y_low)
        if language:
            fraction = 1.0 - fraction
        return round(bottom - min(max(fraction, 0.0), 1.0) * (bottom - top), 1)

    def label(value: float) -> str:
        return f"{value:.3f} bits/char" if language else f"{value * 100:.2f}%"

    drawn, series = [], 0
    for line in lines:
        points = line["points"]
        if line.get("is_best"):
            css = "best"
        elif line.get("is_mine"):
            css = "mine"
        else:
            series += 1
            css = f"series-{series}"
        if not points:
            drawn.append(Line(line["name"], "", css))
            continue
        dots = [(x_of(when), y_of(value), f"{line['name']}: {label(value)}, "
                 f"{when:%d %b %Y, %H:%M} UTC") for when, value in points]
        if line.get("is_mine"):  # each submission on its own: no steps between them
            path = ""
        else:
            path = f"M {dots[0][0]} {dots[0][1]}"
            for x, y, _ in dots[1:]:
                path += f" H {x} V {y}"
            path += f" H {x_of(end)}"
        drawn.append(Line(line["name"], path, css, dots[-1][0], dots[-1][1], dots))
    return HistoryChart(
        width=width, height=height, plot_left=left, plot_right=right, plot_top=top,
        plot_bottom=bottom, lines=drawn,
        x_ticks=[Tick(x_of(when), text, when=when.isoformat())
                 for when, text in time_ticks(start, end)],
        y_ticks=[Tick(y_of(v), f"{v:.3g}" if language else percent_label(v)) for v in y_values],
        quality_label="bits per character (fewer is better)" if language else "accuracy",
    )


def time_ticks(start: datetime, end: datetime, count: int = 6) -> list[tuple[datetime, str]]:
    """Round times between ``start`` and ``end``: whole days, or hours on a short span (UTC)."""
    from datetime import UTC

    span = end - start
    steps = [timedelta(hours=h) for h in (1, 2, 3, 6, 12)] + [
        timedelta(days=d) for d in (1, 2, 7, 14, 28)]
    step = next((s for s in steps if span / s <= count), steps[-1])
    start_utc = start.astimezone(UTC)
    if step < timedelta(days=1):
        hours = step.total_seconds() // 3600
        first = start_utc.replace(minute=0, second=0, microsecond=0)
        first += timedelta(hours=(hours - first.hour % hours) % hours)
        fmt = "%d %b %H:%M"
    else:
        first = start_utc.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        fmt = "%d %b"
    ticks, when = [], first
    while when <= end:
        if when >= start:
            ticks.append((when, when.strftime(fmt).lstrip("0")))
        when += step
    return ticks
