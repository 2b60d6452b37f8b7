"""The ranking rules (SPEC §4): plain functions over plain data (``Candidate``, ``Limits``) that
tests call directly. Every ranking rule lives here and nowhere else; ``leaderboards.ranking``
stores what they produce, and ``leaderboards.incremental`` keeps the stored rows current one
student at a time. Nothing here touches the database.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from competitions.limits import BYTES_PER_MB, Limits, limit_latency_ms, over_limit_reasons

ACCURACY, SPEED, SIZE, EFFICIENCY = "accuracy", "speed", "size", "efficiency"
PARETO = "pareto"
# In this order; a tie in one category breaks on the next one's metric (efficiency wraps around).
CATEGORIES = (ACCURACY, SPEED, SIZE, EFFICIENCY)
SPLITS = ("public", "private")
# The one definition of the names; the stored rows' field choices are built from these.
CATEGORY_LABELS = {ACCURACY: "Accuracy", SPEED: "Speed", SIZE: "Size",
                   EFFICIENCY: "Accuracy per MB", PARETO: "Pareto front"}
SPLIT_LABELS = {"public": "Public", "private": "Private"}
# Score columns that the ranking copies onto its candidates and stored rows as they are.
SPEED_FIELDS = ("speed_index", "speed_index_low", "speed_index_high", "normalized_latency_ms",
                "normalized_latency_low_ms", "normalized_latency_high_ms")


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
    # The team the submitting student is in (``teams.participants``): the team is then the
    # participant ranked (one row per board), ``participant`` the member who submitted.
    team_id: int | None = None
    team_name: str = ""
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


def participant_key(candidate: Candidate) -> tuple[str, int | str]:
    """Who ranks: the candidate's team when it has one, else the student."""
    if candidate.team_id is not None:
        return ("team", candidate.team_id)
    return ("student", candidate.participant)


@dataclass(frozen=True)
class RankedRow:
    rank: int | None  # None for a baseline: shown in place, never ranked
    candidate: Candidate
    tied: bool = False  # shares its rank with another student's row (speed category only)


def accuracy_per_mb(accuracy: float, size_bytes: int) -> float:
    return accuracy / (max(size_bytes, 1) / BYTES_PER_MB)


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


def speed_interval_key(candidate: Candidate) -> tuple[int, tuple[float, float]]:
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
        kind, interval = speed_interval_key(candidate)
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
    """Each participant's best eligible submission for ``category`` (baselines excluded), best
    first. The participant is the student, or their team (``participant_key``): a team has one
    row, the best of all its members' submissions."""
    best: dict[tuple, tuple[tuple, Candidate]] = {}
    for candidate in candidates:
        if candidate.is_baseline or not is_eligible(candidate, category, limits):
            continue
        key = sort_key(candidate, category)
        who = participant_key(candidate)
        current = best.get(who)
        if current is None or key < current[0]:
            best[who] = (key, candidate)
    return [candidate for _, candidate in sorted(best.values(), key=lambda pair: pair[0])]


def rank_category(
    candidates: Sequence[Candidate], category: str, limits: Limits
) -> list[RankedRow]:
    """The category's leaderboard: students ranked 1..n, eligible baselines placed but unranked."""
    students = best_per_participant(candidates, category, limits)
    baselines = [
        c for c in candidates if c.is_baseline and is_eligible(c, category, limits)
    ]
    return order_rows(students, baselines, category)


def order_rows(students: Sequence[Candidate], baselines: Sequence[Candidate],
               category: str) -> list[RankedRow]:
    """Display order and ranks of students' rows (one per student, already their best) and
    baselines: ranks 1..n (speed: tie groups share a rank), baselines placed unranked.

    Ranking any run of consecutive groups alone gives the same order and ranks less the students
    above the run (``leaderboards.incremental`` relies on it)."""
    if category == SPEED:
        return _rank_speed(list(students), list(baselines))
    ranks = {c.submission_id: rank for rank, c in enumerate(
        sorted(students, key=lambda c: sort_key(c, category)), start=1)}
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


