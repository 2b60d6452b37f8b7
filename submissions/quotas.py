"""Submission quotas, enforced inside the database transaction that inserts the submission.

The participant's ``Participation`` row is locked (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite
the IMMEDIATE transaction holds the database write lock) before counting, so two concurrent uploads
by one student cannot both see room for one more.

Both caps are reservations taken by the upload itself: an upload counts against the daily and total
limits from the moment it is stored, and against the rejected-upload cap while its check is pending
(``received``/``validating``: it may still be rejected), so twenty uploads at once cannot all pass a
cap that only counted verdicts already written. A passed check frees the rejected slot; a rejection
frees the daily one.

A team shares one quota (``teams``, when the competition has teams turned on): the uploads of all
its members count, and an upload locks every member's ``Participation`` row (in id order, so two
members uploading at once wait for each other instead of both seeing room). An extension's extra
uploads are the uploading student's own (``coursework.rules.extra_uploads``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from competitions.models import Participation, Track
from django.db.models import Count, Min, Q
from django.utils import timezone
from teams.participants import participant

from .models import COUNTED_STATUSES, PENDING_CHECK_STATUSES, Status, Submission

WINDOW = timedelta(hours=24)


class QuotaExceeded(Exception):
    """The upload would go past a limit; ``str()`` says which and when room frees up."""

    def __init__(self, message: str, retry_at: datetime | None = None):
        super().__init__(message)
        self.retry_at = retry_at


@dataclass(frozen=True)
class Usage:
    last_24h: int
    total: int
    rejected_last_24h: int
    oldest_in_window: datetime | None
    oldest_rejected_in_window: datetime | None
    # Uploads whose check is still to come or under way (each may yet be rejected).
    pending: int = 0
    # Counted over a team's members (the messages then say "your team").
    team: bool = False


def usage(track: Track, user, now: datetime | None = None) -> Usage:
    """How much of the quota ``user``'s participant (the student, or their whole team) has used
    on ``track`` (two queries)."""
    since = (now or timezone.now()) - WINDOW
    counted = Q(status__in=COUNTED_STATUSES)
    recent = Q(created_at__gte=since)
    rejected = Q(status=Status.REJECTED)
    who = participant(track.competition_id, user.pk)
    row = Submission.objects.filter(track=track, user_id__in=who.user_ids,
                                    is_baseline=False).aggregate(
        last_24h=Count("id", filter=counted & recent),
        total=Count("id", filter=counted),
        rejected_last_24h=Count("id", filter=rejected & recent),
        oldest=Min("created_at", filter=counted & recent),
        oldest_rejected=Min("created_at", filter=rejected & recent),
        pending=Count("id", filter=Q(status__in=PENDING_CHECK_STATUSES)),
    )
    return Usage(row["last_24h"], row["total"], row["rejected_last_24h"], row["oldest"],
                 row["oldest_rejected"], row["pending"], who.is_team)


def check(track: Track, used: Usage, extra: int = 0) -> None:
    """Raise ``QuotaExceeded`` when one more upload would pass any of the track's limits;
    ``extra``: uploads an extension adds to the daily and total limits (``coursework``)."""
    daily_limit, total_limit = track.daily_limit + extra, track.total_limit + extra
    you, your = ("Your team", "your team's") if used.team else ("You", "your")
    if used.pending and used.rejected_last_24h + used.pending >= track.rejected_daily_limit:
        raise QuotaExceeded(
            f"{used.pending} of {your} uploads on this track are still being checked and "
            f"{used.rejected_last_24h} were rejected in the last 24 hours; the limit of rejected "
            f"uploads is {track.rejected_daily_limit} and an upload being checked may still be "
            "rejected. Upload again once their checks are done (usually seconds)."
        )
    if used.rejected_last_24h >= track.rejected_daily_limit:
        retry_at = used.oldest_rejected_in_window + WINDOW
        raise QuotaExceeded(
            f"{you} {'has' if used.team else 'have'} had {used.rejected_last_24h} rejected "
            "uploads on this track in the last "
            f"24 hours (the limit is {track.rejected_daily_limit}). Check your model locally with "
            f"the evaluator first; you can upload again at {retry_at:%Y-%m-%d %H:%M} UTC.",
            retry_at,
        )
    if used.total >= total_limit:
        raise QuotaExceeded(
            f"{you} {'has' if used.team else 'have'} used all {total_limit} submissions of "
            "this track."
        )
    if used.last_24h >= daily_limit:
        retry_at = used.oldest_in_window + WINDOW
        raise QuotaExceeded(
            f"{you} {'has' if used.team else 'have'} used {'its' if used.team else 'your'} {daily_limit} submissions "
            "for the last 24 hours on this "
            f"track; the next one frees up at {retry_at:%Y-%m-%d %H:%M} UTC.",
            retry_at,
        )


def lock_participation(track: Track, user) -> Participation:
    """Lock the participant's row for the rest of the current transaction (every member's row,
    in id order, for a team: they share the quota); returns the uploading student's row."""
    who = participant(track.competition_id, user.pk)
    if not who.is_team:
        return Participation.objects.select_for_update().get(
            competition_id=track.competition_id, user=user)
    rows = list(Participation.objects.select_for_update().filter(
        competition_id=track.competition_id, user_id__in=who.user_ids).order_by("pk"))
    mine = next((row for row in rows if row.user_id == user.pk), None)
    if mine is None:
        raise Participation.DoesNotExist("the uploading student does not take part")
    return mine
