"""The leaderboard service (SPEC §4): every ranking rule lives here and nowhere else.

The first half is plain functions over plain data (``Candidate``, ``Limits``) that tests call
directly. The second half stores their output: ``rebuild_track`` runs in the transaction that writes
a score and replaces the track's ``LeaderboardEntry`` rows, so reading a leaderboard
(``leaderboard_entries``) costs only the rows shown.

Speed and its uncertainty (issue 9). Raw latency moves with the worker and the hour, so speed is
ranked on the speed index (the reference model's median over the model's, both timed interleaved in
one run; higher is faster), and the latency limit is checked on the normalized latency (the
hardware class's calibrated reference latency / speed index) when the scorecard has one. Each
scorecard carries a 95% interval of its speed index, and rows whose intervals overlap are shown as
tied in the speed category. The tie groups are made deterministically (``speed_tie_groups``):

1. Order the rows by speed index, fastest first (then the SPEC §4 tie-break: smaller size, then the
   earlier submission).
2. Walk down that order. The first row leads a group; each next row joins the current group when
   its interval overlaps the *leader's* interval (the group's fastest row), and otherwise leads a
   new group. Comparing with the leader, not with the row just above, keeps a chain of slightly
   overlapping rows from tying the fastest with the slowest.
3. A row without an interval (a scorecard from before intervals) is the zero-width interval at its
   speed index: it ties only with a row whose interval contains it, or an equal point. A row with no
   speed index at all ranks after every row that has one, on its raw latency, the same way.
4. Within a group the rows are ordered by the SPEC §4 tie-break (the next category's metric, size,
   then the earlier submission) and all show the group's rank; the next group's rank counts the
   students above it (competition ranking: 1, 1, 3). Baselines never join a group: each is placed
   between groups by its speed index, unranked.

The other categories have no interval: a tie there is broken (SPEC §4) and every row has its own rank.
"""

from __future__ import annotations

import bisect
import hashlib
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
# The one definition of the names; the stored rows' field choices are built from these.
CATEGORY_LABELS = {ACCURACY: "Accuracy", SPEED: "Speed", SIZE: "Size",
                   EFFICIENCY: "Accuracy per MB", PARETO: "Pareto front"}
SPLIT_LABELS = {"public": "Public", "private": "Private"}
# How long an unchanged leaderboard page stays cached (a rebuild makes it unreachable at once).
LEADERBOARD_CACHE_SECONDS = 300
# Score columns that the ranking copies onto its candidates and stored rows as they are.
SPEED_FIELDS = ("speed_index", "speed_index_low", "speed_index_high", "normalized_latency_ms",
                "normalized_latency_low_ms", "normalized_latency_high_ms")
# What a reader of a stored leaderboard row gets, through ``leaderboard_rows`` (the API and the page
# alike): ``latency_ms`` is the raw median on the scoring worker, speed is ranked on ``speed_index``
# with its 95% interval, the latency limit is checked on ``normalized_latency_ms``, and ``tied``
# rows share their rank.
ROW_FIELDS = ("rank", "tied", "position", "username", "is_baseline", "label", "submission_id",
              "accuracy", "bits_per_char", "latency_ms", "normalized_latency_ms",
              "normalized_latency_low_ms", "normalized_latency_high_ms", "speed_index",
              "speed_index_low", "speed_index_high", "size_bytes", "accuracy_per_mb",
              "submitted_at")


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
    # Higher is faster; its 95% interval. None on scorecards from before they were measured.
    speed_index: float | None = None
    speed_index_low: float | None = None
    speed_index_high: float | None = None
    # The hardware class's reference latency / speed index (ms), with its interval.
    normalized_latency_ms: float | None = None
    normalized_latency_low_ms: float | None = None
    normalized_latency_high_ms: float | None = None

    @property
    def accuracy_per_mb(self) -> float:
        return accuracy_per_mb(self.accuracy, self.size_bytes)

    @property
    def ranked_latency_ms(self) -> float:
        """The latency the limit and the Pareto front use: normalized when known, else raw."""
        return limit_latency_ms(self.latency_ms, self.normalized_latency_ms)

    @property
    def speed_interval(self) -> tuple[float, float] | None:
        """The speed index interval; the zero-width one at the point when there is no interval;
        None without a speed index."""
        if self.speed_index is None:
            return None
        if self.speed_index_low is None or self.speed_index_high is None:
            return (self.speed_index, self.speed_index)
        return (min(self.speed_index_low, self.speed_index),
                max(self.speed_index_high, self.speed_index))


@dataclass(frozen=True)
class RankedRow:
    rank: int | None  # None for a baseline: shown in place, never ranked
    candidate: Candidate
    tied: bool = False  # shares its rank with another student's row (speed category only)


def accuracy_per_mb(accuracy: float, size_bytes: int) -> float:
    return accuracy / (max(size_bytes, 1) / BYTES_PER_MB)


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


def is_eligible(candidate: Candidate, category: str, limits: Limits) -> bool:
    """Within the size and latency limits; for all but accuracy, also at or above the floor."""
    if over_limit_reasons(candidate.size_bytes, candidate.latency_ms, limits,
                          candidate.normalized_latency_ms):
        return False
    return category == ACCURACY or candidate.accuracy >= limits.accuracy_floor


def metric_key(candidate: Candidate, category: str) -> tuple[int, float]:
    """The category's metric, signed so that smaller sorts first (better).

    Speed is the speed index (higher is faster); a row without one (an old scorecard) sorts after
    every row that has one, on its raw latency: the two figures are not comparable.
    """
    if category == ACCURACY:
        return (0, -candidate.accuracy)
    if category == SPEED:
        if candidate.speed_index is None:
            return (1, candidate.latency_ms)
        return (0, -candidate.speed_index)
    if category == SIZE:
        return (0, float(candidate.size_bytes))
    if category == EFFICIENCY:
        return (0, -candidate.accuracy_per_mb)
    raise ValueError(f"unknown category {category!r}; the categories are: {', '.join(CATEGORIES)}")


def next_category(category: str) -> str:
    return CATEGORIES[(CATEGORIES.index(category) + 1) % len(CATEGORIES)]


def sort_key(candidate: Candidate, category: str) -> tuple:
    """Better first: the metric, then the next category's metric, then the earlier submission."""
    return (metric_key(candidate, category), *tie_break_key(candidate, category))


def tie_break_key(candidate: Candidate, category: str) -> tuple:
    """SPEC §4's tie-break alone: the next category's metric, then the earlier submission."""
    return (
        metric_key(candidate, next_category(category)),
        candidate.submitted_at,
        candidate.submission_id,
    )


def intervals_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Closed intervals ``(low, high)`` share at least one point (touching counts)."""
    return a[0] <= b[1] and b[0] <= a[1]


def _speed_interval_key(candidate: Candidate) -> tuple[int, tuple[float, float]]:
    # Rows with and without a speed index are never compared (see ``metric_key``).
    if candidate.speed_interval is None:
        return (1, (candidate.latency_ms, candidate.latency_ms))
    return (0, candidate.speed_interval)


def speed_tie_groups(candidates: Iterable[Candidate]) -> list[list[Candidate]]:
    """The speed category's tie groups, fastest group first, each in tie-break order.

    See the module's docstring: rows are walked by speed index, and a row joins the current group
    when its interval overlaps the group leader's (the group's fastest row).
    """
    groups: list[list[Candidate]] = []
    leader_key: tuple[int, tuple[float, float]] | None = None
    for candidate in sorted(candidates, key=lambda c: sort_key(c, SPEED)):
        kind, interval = _speed_interval_key(candidate)
        if leader_key is not None and leader_key[0] == kind and intervals_overlap(
                leader_key[1], interval):
            groups[-1].append(candidate)
        else:
            groups.append([candidate])
            leader_key = (kind, interval)
    return [sorted(group, key=lambda c: tie_break_key(c, SPEED)) for group in groups]


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
    if category == SPEED:
        return _rank_speed(students, baselines)
    ranks = {c.submission_id: rank for rank, c in enumerate(students, start=1)}
    ordered = sorted([*students, *baselines], key=lambda c: sort_key(c, category))
    return [RankedRow(ranks.get(c.submission_id), c) for c in ordered]


def _rank_speed(students: list[Candidate], baselines: list[Candidate]) -> list[RankedRow]:
    """Tie groups share a rank (1, 1, 3); baselines sit between groups by their speed index."""
    blocks: list[tuple[tuple, list[RankedRow]]] = []
    above = 0
    for group in speed_tie_groups(students):
        tied = len(group) > 1
        blocks.append((sort_key(min(group, key=lambda c: sort_key(c, SPEED)), SPEED),
                       [RankedRow(above + 1, c, tied) for c in group]))
        above += len(group)
    # A baseline sorts before the group whose leader it beats; equal keys cannot happen (ids).
    blocks += [(sort_key(b, SPEED), [RankedRow(None, b)]) for b in baselines]
    return [row for _, rows in sorted(blocks, key=lambda block: block[0]) for row in rows]


def dominates(a: Candidate, b: Candidate) -> bool:
    """``a`` is at least as good as ``b`` on accuracy, latency and size, and better on one.

    Latency is ``ranked_latency_ms``: normalized when the scorecard has it.
    """
    a_lat, b_lat = a.ranked_latency_ms, b.ranked_latency_ms
    at_least = a.accuracy >= b.accuracy and a_lat <= b_lat and a.size_bytes <= b.size_bytes
    better = a.accuracy > b.accuracy or a_lat < b_lat or a.size_bytes < b.size_bytes
    return at_least and better


def pareto_front(candidates: Iterable[Candidate], limits: Limits) -> list[Candidate]:
    """Submissions within the limits that no other one beats on all of accuracy, latency
    (``ranked_latency_ms``) and size (``dominates``); of identical points only the earliest is kept.

    Points are visited by latency (then size, accuracy descending, time), so every point seen
    before is at least as fast. A point is then off the front exactly when an earlier front point
    is also at least as small and at least as accurate: a "staircase" of the front so far (size
    ascending, accuracy strictly rising) answers that with one binary search, O(n log n) overall.
    """
    within = [c for c in candidates if not over_limit_reasons(
        c.size_bytes, c.latency_ms, limits, c.normalized_latency_ms)]
    within.sort(key=lambda c: (c.ranked_latency_ms, c.size_bytes, -c.accuracy, c.submitted_at,
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
    ).values(
        "submission_id", "submission__user_id", "submission__user__username",
        "submission__created_at", "submission__is_baseline", "submission__label",
        "latency_ms", "size_bytes", "public_accuracy", "private_accuracy",
        "public_bits_per_char", "private_bits_per_char", *SPEED_FIELDS,
    )
    by_split: dict[str, list[Candidate]] = {split: [] for split in SPLITS}
    for row in rows:
        for split in SPLITS:
            accuracy = row[f"{split}_accuracy"]
            if accuracy is None:
                continue
            by_split[split].append(Candidate(
                submission_id=row["submission_id"], participant=row["submission__user__username"],
                participant_id=row["submission__user_id"], submitted_at=row["submission__created_at"],
                accuracy=accuracy, latency_ms=row["latency_ms"], size_bytes=row["size_bytes"],
                is_baseline=row["submission__is_baseline"],
                bits_per_char=row[f"{split}_bits_per_char"], label=row["submission__label"],
                **{field: row[field] for field in SPEED_FIELDS},
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
            rows += [_entry(track, split, category, i, row.rank, row.candidate, row.tied)
                     for i, row in enumerate(ranked, start=1)]
        front = pareto_front(candidates, limits)
        rows += [_entry(track, split, PARETO, i, None, c) for i, c in enumerate(front, start=1)]
    LeaderboardEntry.objects.filter(track=track).delete()
    LeaderboardEntry.objects.bulk_create(rows)
    type(track).objects.filter(pk=track.pk).update(
        leaderboard_version=models.F("leaderboard_version") + 1)
    return len(rows)


def _entry(track, split: str, category: str, position: int, rank: int | None, c: Candidate,
           tied: bool = False):
    from .models import LeaderboardEntry

    return LeaderboardEntry(
        track=track, split=split, category=category, position=position, rank=rank, tied=tied,
        submission_id=c.submission_id, user_id=c.participant_id, username=c.participant,
        is_baseline=c.is_baseline, label=c.label if c.is_baseline else "", accuracy=c.accuracy,
        bits_per_char=c.bits_per_char, latency_ms=c.latency_ms, size_bytes=c.size_bytes,
        accuracy_per_mb=c.accuracy_per_mb, submitted_at=c.submitted_at,
        **{field: getattr(c, field) for field in SPEED_FIELDS},
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
    # The field list as a digest: spelled out it passes memcached's 250-character key limit.
    columns = hashlib.sha1(",".join(fields).encode(), usedforsecurity=False).hexdigest()[:12]
    key = ":".join(["leaderboard", str(track.pk), str(track.leaderboard_version), split,
                    category, str(offset), str(limit), columns])
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


def track_hardware(track) -> dict:
    """Which hardware class scores ``track``, as the leaderboard, the API and the CSV name it.

    The routing rule of ``hardware.services``: ``Track.hardware_class`` when set, else the default
    class (the first one any worker reported). ``name`` is "" while no worker has started; the CPU
    facts are empty for a class no worker of it has reported yet. One query.
    """
    from hardware.models import HardwareClass
    from hardware.services import effective_class

    classes = HardwareClass.objects.order_by("first_seen", "id")
    row = (classes.filter(name=track.hardware_class) if track.hardware_class else classes).first()
    name = effective_class(track.hardware_class, row.name if row else None) or ""
    return {
        "name": name,
        "default": not track.hardware_class,
        "cpu_model": row.cpu_model if row else "",
        "cpu_features": list(row.cpu_features or []) if row else [],
        "cpu_count": row.cpu_count if row else None,
        "reference_latency_ms": row.reference_latency_ms(track.task) if row else None,
    }
