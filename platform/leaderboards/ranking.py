"""Stored leaderboards: the rows the ranking rules (``leaderboards.rules``) produce, kept in
``LeaderboardEntry`` so that reading a leaderboard (``leaderboard_rows``) costs one cache look-up or
one indexed query of the rows shown, and the one read path the API and the page share.

``rebuild_track`` recomputes a whole track (``manage.py rebuild_leaderboards``, the admin action,
an organizer's edit of the rules); a new score updates only what it changes
(``leaderboards.incremental``, run by the lifecycle's ``scores_changed`` signal in the
transaction that writes the score).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from competitions.limits import track_limits
from django.core.cache import cache
from django.db import models

from .rules import (
    ACCURACY,
    CATEGORIES,
    EFFICIENCY,
    PARETO,
    SIZE,
    SPEED,
    SPEED_FIELDS,
    SPLITS,
    Candidate,
    pareto_front,
    rank_category,
    sort_key,
)

# The names readers of the stored rows use, with the rules' category and split names.
__all__ = ["ACCURACY", "CATEGORIES", "EFFICIENCY", "LEADERBOARD_CACHE_SECONDS", "PARETO",
           "ROW_FIELDS", "SIZE", "SPEED", "SPLITS", "competition_results", "leaderboard_entries",
           "leaderboard_rows", "rebuild_track", "track_candidates", "track_hardware"]

# How long an unchanged leaderboard page stays cached (a rebuild makes it unreachable at once).
LEADERBOARD_CACHE_SECONDS = 300
# What a reader of a stored leaderboard row gets, through ``leaderboard_rows`` (the API and the page
# alike): ``latency_ms`` is the raw median on the scoring worker, speed is ranked on ``speed_index``
# with its 95% interval, the latency limit is checked on ``normalized_latency_ms``, and ``tied``
# rows share their rank.
ROW_FIELDS = ("rank", "tied", "position", "username", "team_name", "is_baseline", "label",
              "submission_id",
              "accuracy", "bits_per_char", "latency_ms", "normalized_latency_ms",
              "normalized_latency_low_ms", "normalized_latency_high_ms", "speed_index",
              "speed_index_low", "speed_index_high", "size_bytes", "accuracy_per_mb",
              "submitted_at")


def track_candidates(track, user_id: int | None = None, *,
                     participant=None) -> dict[str, list[Candidate]]:
    """The track's scored (within-limit) submissions that the course rules let rank
    (``coursework.eligibility``), as candidates per split (two queries, and that module's three).

    With ``user_id`` (or its ``teams.participants.participant``), only that participant's: the
    student's, or all their team's members' (the rules are per participant, so they hold on the
    part). Each candidate names the team its student is in (``Candidate.team_id``).
    """
    from teams.participants import participant as participant_of
    from teams.participants import team_labels

    from submissions.models import Score, Status

    rows = Score.objects.filter(
        submission__track=track, submission__status=Status.SCORED,
        latency_ms__isnull=False, size_bytes__isnull=False,
    )
    if user_id is not None and participant is None:
        participant = participant_of(track.competition_id, user_id)
    if participant is not None:
        rows = rows.filter(submission__user_id__in=participant.user_ids)
        labels = {uid: (participant.team_id, participant.team_name)
                  for uid in participant.user_ids if participant.is_team}
    else:
        labels = team_labels(track.competition_id)
    rows = rows.values(
        "submission_id", "submission__user_id", "submission__user__username",
        "submission__created_at", "submission__is_baseline", "submission__label",
        "latency_ms", "size_bytes", "public_accuracy", "private_accuracy",
        "public_bits_per_char", "private_bits_per_char", *SPEED_FIELDS,
    )
    by_split: dict[str, list[Candidate]] = {split: [] for split in SPLITS}
    for row in rows:
        team_id, team_name = (None, "") if row["submission__is_baseline"] else labels.get(
            row["submission__user_id"], (None, ""))
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
                team_id=team_id, team_name=team_name,
                **{field: row[field] for field in SPEED_FIELDS},
            ))
    # The course rules (final picks on the private split, late and hidden uploads never ranked)
    # live with the course's models: docs/architecture.md, "Where each feature lives".
    from coursework.eligibility import apply

    return apply(track, by_split, teams={uid: team for uid, (team, _) in labels.items()})


def rebuild_track(track) -> int:
    """Recompute and store every category and split of ``track``; returns the rows written.

    The full rebuild (``manage.py rebuild_leaderboards``, the admin action, a change of the course
    rules); a new score goes through ``leaderboards.incremental.refresh_student``, which must
    leave exactly the rows this writes (``tests/platform/test_incremental.py``).

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

    keys = {}
    if category != PARETO:
        (key_kind, key_value), (tie_kind, tie_value), _, _ = sort_key(c, category)
        keys = {"key_kind": key_kind, "key_value": key_value, "tie_kind": tie_kind,
                "tie_value": tie_value}
    return LeaderboardEntry(
        track=track, split=split, category=category, position=position, rank=rank, tied=tied,
        submission_id=c.submission_id, user_id=c.participant_id, username=c.participant,
        team_id=c.team_id, team_name=c.team_name, is_baseline=c.is_baseline, label=c.label if c.is_baseline else "", accuracy=c.accuracy,
        bits_per_char=c.bits_per_char, latency_ms=c.latency_ms, size_bytes=c.size_bytes,
        accuracy_per_mb=c.accuracy_per_mb, submitted_at=c.submitted_at,
        **{field: getattr(c, field) for field in SPEED_FIELDS}, **keys,
    )


def entry_candidate(entry) -> Candidate:
    """A stored row back as the candidate it was made from (``label`` only on baselines)."""
    return Candidate(
        submission_id=entry.submission_id, participant=entry.username,
        participant_id=entry.user_id, submitted_at=entry.submitted_at, accuracy=entry.accuracy,
        latency_ms=entry.latency_ms, size_bytes=entry.size_bytes, is_baseline=entry.is_baseline,
        bits_per_char=entry.bits_per_char, label=entry.label, team_id=entry.team_id,
        team_name=entry.team_name, **{field: getattr(entry, field) for field in SPEED_FIELDS},
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
