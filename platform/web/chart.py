"""Geometry of the Pareto chart: accuracy (up) against latency (right, log scale), marker area by
size. Plain functions over plain numbers; the template only draws what these return.

The front is over three metrics (accuracy, latency and size), so its points are highlighted rather
than joined by a line: a line through a 3-D front drawn in 2-D zigzags and misleads."""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 360
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 40, 16, 48
MIN_RADIUS, MAX_RADIUS = 4.0, 16.0


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


@dataclass(frozen=True)
class Marker:
    point: Point
    x: float
    y: float
    r: float


@dataclass(frozen=True)
class Tick:
    position: float
    text: str
    major: bool = True  # narrow screens label the major ticks only


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    markers: list[Marker]
    x_ticks: list[Tick]
    y_ticks: list[Tick]

    @property
    def plot_width(self) -> float:
        return self.plot_right - self.plot_left

    @property
    def plot_height(self) -> float:
        return self.plot_bottom - self.plot_top


def build_chart(points: list[Point], width: int = WIDTH, height: int = HEIGHT) -> Chart:
    """Place ``points``: x = log10(latency), y = accuracy, radius grows with sqrt(size)."""
    left, right = MARGIN_LEFT, width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, height - MARGIN_BOTTOM
    lat_low, lat_high = latency_range([p.latency_ms for p in points])
    acc_low = accuracy_floor_of_axis([p.accuracy for p in points])
    span = math.log10(lat_high) - math.log10(lat_low)

    def x_of(latency_ms: float) -> float:
        return left + (math.log10(max(latency_ms, lat_low)) - math.log10(lat_low)) / span * (
            right - left)

    def y_of(accuracy: float) -> float:
        return bottom - (accuracy - acc_low) / (1.0 - acc_low) * (bottom - top)

    sizes = [p.size_bytes for p in points]
    markers = [Marker(p, round(x_of(p.latency_ms), 1), round(y_of(p.accuracy), 1),
                      round(radius(p.size_bytes, sizes), 1)) for p in points]
    return Chart(
        width=width, height=height, plot_left=left, plot_right=right, plot_top=top,
        plot_bottom=bottom, markers=sorted(markers, key=lambda m: -m.r),  # small ones on top
        x_ticks=[Tick(round(x_of(v), 1), latency_label(v) if labelled(v, span) else "",
                      is_power_of_ten(v)) for v in latency_ticks(lat_low, lat_high)],
        y_ticks=[Tick(round(y_of(v), 1), f"{v:.0%}") for v in accuracy_ticks(acc_low)],
    )


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


def accuracy_floor_of_axis(accuracies: list[float]) -> float:
    """The accuracy axis starts at the tenth below the worst point (0 when there is none)."""
    if not accuracies:
        return 0.0
    return max(0.0, min(0.9, math.floor(min(accuracies) * 10) / 10))


def accuracy_ticks(low: float) -> list[float]:
    span = 1.0 - low
    step = 0.05 if span <= 0.3 else 0.1 if span <= 0.5 else 0.2
    count = round((1.0 - low) / step)
    return [round(1.0 - i * step, 2) for i in range(count, -1, -1)]


def radius(size_bytes: int, sizes: list[int]) -> float:
    """Marker area proportional to size: radius by sqrt, the largest model at ``MAX_RADIUS``."""
    largest = max(sizes) if sizes else 0
    if largest <= 0:
        return MIN_RADIUS
    return max(MIN_RADIUS, MAX_RADIUS * math.sqrt(max(size_bytes, 0) / largest))
