"""How numbers read on the pages (one place, used by every template)."""

from __future__ import annotations

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()
BYTES_PER_MB = 1_000_000  # SPEC: a megabyte is 10^6 bytes, as in the size limit


@register.filter
def percent(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f}%"


@register.filter
def milliseconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 0.01:  # a normalized latency of a very fast model: three figures, not "0.000 ms"
        return f"{value * 1000:.3g} µs"
    return f"{value:.3f} ms" if value < 1 else f"{value:.2f} ms"


@register.filter
def megabytes(value: int | None) -> str:
    """Sizes in decimal units: bytes, kB or MB."""
    if value is None:
        return "—"
    if value < 1000:
        return f"{value} B"
    if value < BYTES_PER_MB:
        return f"{value / 1000:.1f} kB"
    return f"{value / BYTES_PER_MB:.2f} MB"


@register.filter
def per_mb(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g} per MB" if value < 1000 else f"{value:,.0f} per MB"


@register.filter
def bits(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


@register.filter
def wait_time(seconds: float | None) -> str:
    """An estimated wait in words, rounded as far as an estimate deserves."""
    if seconds is None:
        return "—"
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return f"{max(round(seconds / 5) * 5, 5):.0f} seconds"
    minutes = round(seconds / 60)
    if minutes < 60:
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.filter
def duration(delta) -> str:
    """A fixed length of time (a ``timedelta``) in words: "15 minutes", "30 seconds"."""
    if delta is None:
        return "—"
    seconds = round(delta.total_seconds())
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("s" if count != 1 else "")
    return f"{seconds} second" + ("s" if seconds != 1 else "")


TIME_FORMAT = "j M Y, H:i"  # the one way a moment reads on every page (the script localizes it)


@register.filter
def when(value) -> str:
    """A moment as ``<time>``: "2 Dec 2026, 07:04 UTC" on the server; the pages' script
    rewrites it in the viewer's time zone in the same format ("2 Dec 2026, 08:04 CET")."""
    if value is None:
        return "—"
    from datetime import UTC

    from django.utils.dateformat import format as date_format

    utc = value.astimezone(UTC)
    return format_html('<time datetime="{}" data-when>{} UTC</time>', utc.isoformat(),
                       date_format(utc, TIME_FORMAT))


@register.filter
def time_left(moment, now=None) -> str:
    """How long until ``moment`` in words ("2 days 3 h", "4 h 05 min", "12 min 30 s"); the
    pages' script counts it down in the same words."""
    if moment is None:
        return "—"
    seconds = int((moment - (now or timezone.now())).total_seconds())
    if seconds <= 0:
        return "0 s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s"


@register.inclusion_tag("web/_schedule.html")
def schedule(competition, now=None) -> dict:
    """When ``competition`` opens and closes, in the one time format, with a countdown."""
    now = now or timezone.now()
    state = ("upcoming" if now < competition.start else
             "open" if now < competition.deadline else "closed")
    return {"competition": competition, "state": state}
