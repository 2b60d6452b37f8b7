"""A track's limits (SPEC §4) as plain data and the rule that checks a scored model against them.

The lifecycle checks a new score here (``over_limit_reasons``) in the transaction that writes it,
and the ranking uses the same rule to leave over-limit rows out; neither needs the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass

BYTES_PER_MB = 1_000_000


@dataclass(frozen=True)
class Limits:
    max_size_bytes: int
    max_latency_ms: float
    accuracy_floor: float = 0.0


def track_limits(track) -> Limits:
    return Limits(track.max_size_bytes, track.max_latency_ms, track.accuracy_floor)


def limit_latency_ms(latency_ms: float, normalized_latency_ms: float | None = None) -> float:
    """The figure the latency limit is checked on: the normalized latency when the scorecard has
    one (comparable across workers and hours), else the raw median (older scorecards)."""
    return latency_ms if normalized_latency_ms is None else normalized_latency_ms


def over_limit_reasons(size_bytes: int, latency_ms: float, limits: Limits,
                       normalized_latency_ms: float | None = None) -> list[str]:
    """The track limits a scored model exceeds, in words; empty when it may be ranked.

    ``latency_ms`` is the raw median; pass ``normalized_latency_ms`` when the scorecard has one:
    the limit is then checked on it, and the words name both figures.
    """
    reasons = []
    if size_bytes > limits.max_size_bytes:
        reasons.append(
            f"size {size_bytes / BYTES_PER_MB:.2f} MB is over the limit of "
            f"{limits.max_size_bytes / BYTES_PER_MB:.2f} MB"
        )
    if limit_latency_ms(latency_ms, normalized_latency_ms) > limits.max_latency_ms:
        if normalized_latency_ms is None:
            reasons.append(
                f"latency {latency_ms:.2f} ms is over the limit of {limits.max_latency_ms:.2f} ms"
            )
        else:
            reasons.append(
                f"normalized latency {normalized_latency_ms:.2f} ms (raw median "
                f"{latency_ms:.2f} ms on the scoring worker) is over the limit of "
                f"{limits.max_latency_ms:.2f} ms"
            )
    return reasons
