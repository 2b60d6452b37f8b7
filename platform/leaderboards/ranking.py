"""The leaderboard service (SPEC §4): every ranking rule lives here and nowhere else.

The first half is plain functions over plain data (``Candidate``, ``Limits``) that tests call
directly. The second half stores their output: ``rebuild_track`` runs in the transaction that writes
a score and replaces the track's ``LeaderboardEntry`` rows, so reading a leaderboard
(``leaderboard_entries``) costs only the rows shown.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db import models

BYTES_PER_MB = 1_000_000
ACCURACY, SPEED, SIZE, EFFICIENCY = "accuracy", "speed", "size", "efficiency"
PARETO = "pareto"
# In this order; a tie in one category breaks on the next one's metric (efficiency wraps around).
CATEGORIES = (ACCURACY, SPEED, SIZE, EFFICIENCY)
SPLITS = ("public", "private")
# How long an unchanged leaderboard page stays cached (a rebuild makes it unreachable at once).
LEADERBOARD_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Limits:
    max_size_bytes: int
    max_latency_ms: float
    accuracy_floor: float = 0.0


@dataclass(frozen=True)
class Candidate:
    """One scored submission as the ranking sees it (accuracy of the split being ranked)."""

    submission_id: int
    participant: str
    submitted_at: datetime
    accuracy: float
    latency_ms: float
    size_bytes: int
    is_baseline: bool = False
    bits_per_char: float | None = None
    participant_id: int | None = None
    label: str = ""

    @property
    def accuracy_per_mb(self) -> float:
        return accuracy_per_mb(self.accuracy, self.size_bytes)


@dataclass(frozen=True)
class RankedRow:
    rank: int | None  # None for a baseline: shown in place, never ranked
    candidate: Candidate


def accuracy_per_mb(accuracy: float, size_bytes: int) -> float:
    return accuracy / (max(size_bytes, 1) / BYTES_PER_MB)


def over_limit_reasons(size_bytes: int, latency_ms: float, limits: Limits) -> list[str]:
    """The track limits a scored model exceeds, in words; empty when it may be ranked."""
    reasons = []
    if size_bytes > limits.max_size_bytes:
        reasons.append(
            f"size {size_bytes / BYTES_PER_MB:.2f} MB is over the limit of "
            f"{limits.max_size_bytes / BYTES_PER_MB:.2f} MB"
        )
    if latency_ms > limits.max_latency_ms:
        reasons.append(
            f"latency {latency_ms:.2f} ms is over the limit of {limits.max_latency_ms:.2f} ms"
        )
    return reasons


def is_eligible(candidate: Candidate, category: str, limits: Limits) -> bool:
    """Within the size and latency limits; for all but accuracy, also at or above the floor."""
    if over_limit_reasons(candidate.size_bytes, candidate.latency_ms, limits):
        return False
    return category == ACCURACY or candidate.accuracy >= limits.accuracy_floor


def metric_key(candidate: Candidate, category: str) -> float:
    """The category's metric, signed so that smaller sorts first (better)."""
    if category == ACCURACY:
        return -candidate.accuracy
    if category == SPEED:
        return candidate.latency_ms
    if category == SIZE:
        return float(candidate.size_bytes)
    if category == EFFICIENCY:
        return -candidate.accuracy_per_mb
    raise ValueError(f"unknown category {category!r}; the categories are: {', '.join(CATEGORIES)}")


def next_category(category: str) -> str:
    return CATEGORIES[(CATEGORIES.index(category) + 1) % len(CATEGORIES)]


def sort_key(candidate: Candidate, category: str) -> tuple:
    """Better first: the metric, then the next category's metric, then the earlier submission."""
    return (
        metric_key(candidate, category),
        metric_key(candidate, next_category(category)),
        candidate.submitted_at,
        candidate.submission_id,
    )


def best_per_participant(
    candidates: Iterable[Candidate], category: str, limits: Limits
) -> list[Candidate]:
    """Each student's best eligible submission for ``category`` (baselines excluded), best first."""
    best: dict[str, tuple[tuple, Candidate]] = {}
    for candidate in candidates:
        if candidate.is_baseline or not is_eligible(candidate, category, limits):
            continue
        key = sort_key(candidate, category)
        current = best.get(candidate.participant)
        if current is None or key < current[0]:
            best[candidate.participant] = (key, candidate)
    return [candidate for _, candidate in sorted(best.values(), key=lambda pair: pair[0])]


def rank_category(
    candidates: Sequence[Candidate], category: str, limits: Limits
) -> list[RankedRow]:
    """The category's leaderboard: students ranked 1..n, eligible baselines placed but unranked."""
    students = best_per_participant(candidates, category, limits)
    baselines = [
        c for c in candidates if c.is_baseline and is_eligible(c, category, limits)
    ]
    ranks = {c.submission_id: rank for rank, c in enumerate(students, start=1)}
    ordered = sorted([*students, *baselines], key=lambda c: sort_key(c, category))
    return [RankedRow(ranks.get(c.submission_id), c) for c in ordered]


def dominates(a: Candidate, b: Candidate) -> bool:
    """``a`` is at least as good as ``b`` on accuracy, latency and size, and better on one."""
    at_least = (
        a.accuracy >= b.accuracy and a.latency_ms <= b.latency_ms and a.size_bytes <= b.size_bytes
    )
    better = a.accuracy > b.accuracy or a.latency_ms < b.latency_ms or a.size_bytes < b.size_bytes
    return at_least and better


def pareto_front(candidates: Iterable[Candidate], limits: Limits) -> list[Candidate]:
    """Submissions within the limits that no other one beats on all of accuracy, latency and size
    (``dominates``); of identical points only the earliest is kept.

    Points are visited by latency (then size, accuracy descending, time), so every point seen
    before is at least as fast. A point is then off the front exactly when an earlier front point
    is also at least as small and at least as accurate: a "staircase" of the front so far (size
    ascending, accuracy strictly rising) answers that with one binary search, O(n log n) overall.
    """
    within = [c for c in candidates if not over_limit_reasons(c.size_bytes, c.latency_ms, limits)]
    within.sort(key=lambda c: (c.latency_ms, c.size_bytes, -c.accuracy, c.submitted_at,
                               c.submission_id))
    sizes: list[int] = []
    accuracies: list[float] = []
    front: list[Candidate] = []
    for candidate in within:
        i = bisect.bisect_right(sizes, candidate.size_bytes) - 1
        if i >= 0 and accuracies[i] >= candidate.accuracy:
            continue  # dominated, or identical to an earlier point
        front.append(candidate)
        at = bisect.bisect_left(sizes, candidate.size_bytes)
        end = at
        while end < len(sizes) and accuracies[end] <= candidate.accuracy:
            end += 1  # steps no longer needed: this point is smaller-or-equal and as accurate
        sizes[at:end] = [candidate.size_bytes]
        accuracies[at:end] = [candidate.accuracy]
    return front


# --- Stored leaderboards ---------------------------------------------------------------------------


def track_limits(track) -> Limits:
    return Limits(track.max_size_bytes, track.max_latency_ms, track.accuracy_floor)


def track_candidates(track) -> dict[str, list[Candidate]]:
    """The track's scored (within-limit) submissions as candidates, per split (one query)."""
    from submissions.models import Score, Status

    rows = Score.objects.filter(
        submission__track=track, submission__status=Status.SCORED,
        latency_ms__isnull=False, size_bytes__isnull=False,
    ).values_list(
        "submission_id", "submission__user_id", "submission__user__username",
        "submission__created_at", "submission__is_baseline", "submission__label",
        "latency_ms", "size_bytes", "public_accuracy", "private_accuracy",
        "public_bits_per_char", "private_bits_per_char",
    )
    by_split: dict[str, list[Candidate]] = {split: [] for split in SPLITS}
    for (sid, uid, username, created, baseline, label, latency, size,
         public_acc, private_acc, public_bpc, private_bpc) in rows:
        for split, accuracy, bpc in (("public", public_acc, public_bpc),
                                     ("private", private_acc, private_bpc)):
            if accuracy is None:
                continue
            by_split[split].append(Candidate(
                submission_id=sid, participant=username, participant_id=uid,
                submitted_at=created, accuracy=accuracy, latency_ms=latency, size_bytes=size,
                is_baseline=baseline, bits_per_char=bpc, label=label,
            ))
    return by_split


def rebuild_track(track) -> int:
    """Recompute and store every category and split of ``track``; returns the rows written.

    Call it inside the transaction that changed a score, after locking the track row
    (``Track.objects.select_for_update()``) so concurrent rebuilds of one track run one at a time.
    """
    from .models import LeaderboardEntry

    limits = track_limits(track)
    rows = []
    for split, candidates in track_candidates(track).items():
        for category in CATEGORIES:
            ranked = rank_category(candidates, category, limits)
            rows += [_entry(track, split, category, i, row.rank, row.candidate)
                     for i, row in enumerate(ranked, start=1)]
        front = pareto_front(candidates, limits)
        rows += [_entry(track, split, PARETO, i, None, c) for i, c in enumerate(front, start=1)]
    LeaderboardEntry.objects.filter(track=track).delete()
    LeaderboardEntry.objects.bulk_create(rows)
    type(track).objects.filter(pk=track.pk).update(
        leaderboard_version=models.F("leaderboard_version") + 1)
    return len(rows)


def _entry(track, split: str, category: str, position: int, rank: int | None, c: Candidate):
    from .models import LeaderboardEntry

    return LeaderboardEntry(
        track=track, split=split, category=category, position=position, rank=rank,
        submission_id=c.submission_id, user_id=c.participant_id, username=c.participant,
        is_baseline=c.is_baseline, label=c.label if c.is_baseline else "", accuracy=c.accuracy,
        bits_per_char=c.bits_per_char, latency_ms=c.latency_ms, size_bytes=c.size_bytes,
        accuracy_per_mb=c.accuracy_per_mb, submitted_at=c.submitted_at,
    )


def leaderboard_entries(track, category: str, split: str, *, offset: int = 0, limit: int = 100):
    """The stored rows of one leaderboard, in display order (no ranking work on read).

    ``category`` is one of ``CATEGORIES`` or ``PARETO``. Whether the caller may see the private
    split is the caller's business (``Competition.can_see_private``).
    """
    from .models import LeaderboardEntry

    if category not in (*CATEGORIES, PARETO):
        raise ValueError(f"unknown category {category!r}; use one of: "
                         f"{', '.join((*CATEGORIES, PARETO))}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use public or private")
    queryset = LeaderboardEntry.objects.filter(track=track, split=split, category=category)
    return queryset.order_by("position")[offset:offset + limit]


def leaderboard_rows(track, category: str, split: str, fields: Sequence[str], *,
                     offset: int = 0, limit: int = 100) -> list[dict]:
    """``leaderboard_entries`` as dicts of ``fields``, cached under the track's leaderboard version.

    Every rebuild bumps ``track.leaderboard_version`` in the transaction that writes the rows, so
    a cached page is never older than the track row the caller just read; a cache local to each
    web process is therefore enough, and reading a popular board costs one cache look-up.
    """
    key = ":".join(["leaderboard", str(track.pk), str(track.leaderboard_version), split,
                    category, str(offset), str(limit), ",".join(fields)])
    rows = cache.get(key)
    if rows is None:
        rows = list(leaderboard_entries(track, category, split, offset=offset, limit=limit)
                    .values(*fields))
        cache.set(key, rows, timeout=LEADERBOARD_CACHE_SECONDS)
    return rows


def competition_results(competition):
    """Every participant's best per category on both splits (for the organizers' CSV)."""
    from .models import LeaderboardEntry

    return (
        LeaderboardEntry.objects.filter(track__competition=competition)
        .exclude(category=PARETO)
        .select_related("track")
        .order_by("track__slug", "split", "category", "position")
    )
