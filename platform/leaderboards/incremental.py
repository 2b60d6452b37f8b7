"""A new (or replaced) score updates only what it changes in the stored leaderboard rows.

``refresh_student(track, user_id)`` runs in the transaction that wrote the score, under the
track's row lock (``leaderboards.receivers``). It reads that student's own scored submissions
(their candidates, with the course rules applied), and for each split and category compares
their best with their stored row. Where it differs, only a *window* of the stored board is
rewritten, and the rows after it move by one place (one UPDATE):

- the window starts just before the lower of the old and new sort keys (in the speed category: at
  the leader of the tie group there, since a group's rows share a rank and a changed row can
  regroup the rows below the leader it compares with);
- it ends at the first student row past the higher key that starts a tie group both before and
  after the change (any row, outside speed). From there on the groups are the same as before,
  so their ranks only move by the change in the count of students above.

Inside the window the rows are ordered and ranked by the same rule the full rebuild uses
(``rules.order_rows``), and every stored row carries its sort key (indexed), so finding the
window costs a few indexed queries, not a read of the track. The Pareto front is recomputed
from the stored front plus the student's candidates (the front of a union is the front of the
fronts); only when one of the student's own front rows goes away (a re-score, or a new best
public submission replacing the one ranked on the private split) is the split's front read
from all its candidates. A baseline (rare, an organizer's upload) and boards stored before the
sort keys existed take the full rebuild (``ranking.rebuild_track``).

``tests/platform/test_incremental.py`` checks on random histories that this leaves exactly the rows
a full rebuild writes.
"""

from __future__ import annotations

from collections.abc import Iterator

from competitions.limits import Limits, track_limits
from django.db import connection, models
from django.db.models import Max
from django.db.models.expressions import RawSQL
from teams.participants import participant

from .models import LeaderboardEntry
from .ranking import _entry, entry_candidate, rebuild_track, track_candidates
from .rules import (
    CATEGORIES,
    PARETO,
    SPEED,
    SPEED_FIELDS,
    SPLITS,
    Candidate,
    best_per_participant,
    intervals_overlap,
    order_rows,
    pareto_front,
    sort_key,
    speed_interval_key,
)

KEY_COLUMNS = ("key_kind", "key_value", "tie_kind", "tie_value", "submitted_at", "submission_id")
# Positions are moved through this offset so that no two rows ever hold one place mid-UPDATE.
_SHIFT_OFFSET = 1_000_000_000
_BATCH = 200


def refresh_student(track, user_id: int) -> int:
    """Bring the stored rows of ``track`` up to date after a score of ``user_id`` was written
    or replaced; the rows written. Call it under the track's row lock.

    The participant is the student, or their team (``teams.participants``): its rows and
    candidates are those of all its members, resolved here once."""
    who = participant(track.competition_id, user_id)
    mine = track_candidates(track, participant=who)
    ids = who.user_ids
    # The participant's rows and both splits' stored fronts (short) in one query.
    # (Unordered: the model's default order joins the track and its competition to sort.)
    rows = list(LeaderboardEntry.objects.filter(track=track).filter(
        models.Q(user_id__in=ids) | models.Q(split__in=SPLITS, category=PARETO)).order_by())
    stored = [row for row in rows if row.user_id in ids]
    fronts = {split: sorted((row for row in rows if row.split == split
                             and row.category == PARETO), key=lambda row: row.position)
              for split in SPLITS}
    # Rows are written a whole track at a time by the rebuild, so one row tells whether the
    # track's rows carry their sort keys (rows stored before the keys existed do not).
    sample = next((row for row in stored if row.category != PARETO), None) or next(
        (row for split, category in ((SPLITS[0], c) for c in CATEGORIES)
         if (row := LeaderboardEntry.objects.filter(track=track, split=split, category=category,
                                                    position=1).order_by().first()) is not None),
        None)
    boards = [(row.split, row.category) for row in stored if row.category != PARETO]
    if (any(c.is_baseline for cs in mine.values() for c in cs)
            or any(row.is_baseline for row in stored)
            # Members' rows from before they were one participant (teams turned on by hand).
            or len(boards) != len(set(boards))
            or (sample is not None and sample.key_kind is None)):
        return rebuild_track(track)
    limits = track_limits(track)
    written = 0
    for split in SPLITS:
        for category in CATEGORIES:
            old = next((row for row in stored if row.split == split
                        and row.category == category), None)
            best = best_per_participant(mine[split], category, limits)
            new = best[0] if best else None
            if old is None and new is None:
                continue
            if old is not None and new is not None and _facts(entry_candidate(old)) == _facts(new):
                continue
            written += _move(track, split, category, old, new)
        written += _refresh_front(track, split, limits, user_id,
                                  [row for row in stored if row.split == split
                                   and row.category == PARETO], mine[split], fronts[split])
    if written:
        type(track).objects.filter(pk=track.pk).update(
            leaderboard_version=models.F("leaderboard_version") + 1)
    return written


def _facts(c: Candidate) -> tuple:
    """What a stored row shows of a candidate (the label only matters on baselines)."""
    return (c.submission_id, c.participant_id, c.participant, c.team_id, c.team_name,
            c.submitted_at, c.accuracy,
            c.latency_ms, c.size_bytes, c.bits_per_char, *(getattr(c, f) for f in SPEED_FIELDS))


def _flat_key(c: Candidate, category: str) -> tuple:
    (key_kind, key_value), (tie_kind, tie_value), submitted_at, submission_id = sort_key(
        c, category)
    return (key_kind, key_value, tie_kind, tie_value, submitted_at, submission_id)


def _row_key(row: LeaderboardEntry) -> tuple:
    return tuple(getattr(row, column) for column in KEY_COLUMNS)


def _compare(op: str, key: tuple):
    """Rows whose sort key is ``op`` ``key`` (a row-value comparison the key index serves)."""
    columns = ", ".join(f'"{LeaderboardEntry._meta.get_field(c.removesuffix("_id")).column}"'
                        for c in KEY_COLUMNS)
    placeholders = ", ".join(["%s"] * len(KEY_COLUMNS))
    # The database's own form of the time (SQLite keeps it as naive UTC text).
    params = [*key[:4], connection.ops.adapt_datetimefield_value(key[4]), key[5]]
    return RawSQL(f"({columns}) {op} ({placeholders})", params,
                  output_field=models.BooleanField())


def _ordered(queryset, descending: bool = False):
    return queryset.order_by(*(f"-{c}" if descending else c for c in KEY_COLUMNS))


def _rows_from(board, start: tuple | None) -> Iterator[LeaderboardEntry]:
    """The board's rows in sort-key order from ``start`` (inclusive; None: the first), in
    batches, so a window that ends early reads only a little past its end."""
    queryset = board if start is None else board.filter(_compare(">=", start))
    last = None
    while True:
        page = queryset if last is None else board.filter(_compare(">", last))
        batch = list(_ordered(page)[:_BATCH])
        yield from batch
        if len(batch) < _BATCH:
            return
        last = _row_key(batch[-1])


def _move(track, split: str, category: str, old: LeaderboardEntry | None,
          new: Candidate | None) -> int:
    """Replace the student's row ``old`` by ``new`` (either may be None) on one board."""
    board = LeaderboardEntry.objects.filter(track=track, split=split, category=category)
    keys = [key for key in (_row_key(old) if old else None,
                            _flat_key(new, category) if new else None) if key is not None]
    low, high = min(keys), max(keys)
    before = _ordered(board.filter(_compare("<", low), is_baseline=False), descending=True).first()
    if before is None:
        start, above = None, 0
    elif category == SPEED:
        leader = _ordered(board.filter(is_baseline=False, rank=before.rank)).first()
        start, above = _row_key(leader), before.rank - 1
    else:
        start, above = low, before.rank

    window: list[LeaderboardEntry] = []
    students: list[Candidate] = []
    baselines: list[Candidate] = []
    stop: LeaderboardEntry | None = None
    pending = new
    new_leader = None  # the speed walk's current group leader after the change
    old_rank = None  # the stored rank of the previous student row before the change

    def join(c: Candidate) -> None:
        nonlocal new_leader
        students.append(c)
        kind, interval = speed_interval_key(c)
        if not (new_leader and new_leader[0] == kind and intervals_overlap(new_leader[1],
                                                                             interval)):
            new_leader = (kind, interval)

    def starts_group(row: LeaderboardEntry) -> bool:
        if category != SPEED:
            return True
        kind, interval = speed_interval_key(entry_candidate(row))
        joins = new_leader and new_leader[0] == kind and intervals_overlap(new_leader[1],
                                                                            interval)
        return row.rank != old_rank and not joins

    for row in _rows_from(board, start):
        key = _row_key(row)
        if pending is not None and _flat_key(pending, category) < key:
            join(pending)
            pending = None
        if not row.is_baseline and old is not None and row.pk == old.pk:
            window.append(row)
            old_rank = row.rank
            continue
        if row.is_baseline:
            window.append(row)
            baselines.append(entry_candidate(row))
            continue
        if key > high and starts_group(row):
            stop = row
            break
        window.append(row)
        join(entry_candidate(row))
        old_rank = row.rank
    if pending is not None:
        join(pending)

    if window:
        start_position = min(row.position for row in window)
    elif stop is not None:
        start_position = stop.position
    else:
        start_position = (board.aggregate(top=Max("position"))["top"] or 0) + 1
    ranked = order_rows(students, baselines, category)
    moved_rows = len(ranked) - len(window)
    moved_ranks = (new is not None) - (old is not None)
    LeaderboardEntry.objects.filter(pk__in=[row.pk for row in window]).delete()
    if stop is not None and (moved_rows or moved_ranks):
        # One UPDATE moves places and ranks (a baseline's null rank stays null); a second one
        # takes the offset off again when places moved.
        after = board.filter(position__gte=start_position + len(window))
        offset = _SHIFT_OFFSET if moved_rows else 0
        after.update(position=models.F("position") + offset + moved_rows,
                     rank=models.F("rank") + moved_ranks)
        if offset:
            board.filter(position__gte=_SHIFT_OFFSET).update(
                position=models.F("position") - _SHIFT_OFFSET)
    LeaderboardEntry.objects.bulk_create([
        _entry(track, split, category, start_position + i,
               None if row.rank is None else row.rank + above, row.candidate, row.tied)
        for i, row in enumerate(ranked)])
    return len(ranked) + 1


def _refresh_front(track, split: str, limits: Limits, user_id: int,
                   my_front: list[LeaderboardEntry], mine: list[Candidate],
                   stored: list[LeaderboardEntry]) -> int:
    """The split's Pareto front after the student's candidates became ``mine``; ``stored``: the
    split's stored front, in place order."""
    board = LeaderboardEntry.objects.filter(track=track, split=split, category=PARETO)
    now = {c.submission_id: _facts(c) for c in mine}
    if any(now.get(row.submission_id) != _facts(entry_candidate(row)) for row in my_front):
        # One of the student's own front points went away or changed: the points it dominated
        # may be back, and only the split's candidates know which.
        front = pareto_front(track_candidates(track)[split], limits)
    else:
        on_front = {row.submission_id for row in stored}
        front = pareto_front([*map(entry_candidate, stored),
                              *(c for c in mine if c.submission_id not in on_front)], limits)
    if [_facts(c) for c in front] == [_facts(entry_candidate(row)) for row in stored]:
        return 0
    board.delete()
    LeaderboardEntry.objects.bulk_create(
        [_entry(track, split, PARETO, i, None, c) for i, c in enumerate(front, start=1)])
    return len(front)
