"""What students and organizers change: final picks, extensions, hiding. Each change moves only
the affected participant's rows (the student, or their team), through the incremental write a
new score uses (``leaderboards.incremental.refresh_student``), in the same transaction (the
track row locked first, the lock order of ``submissions.lifecycle``); it leaves the rows a full
rebuild would (``tests/platform/test_course_refresh.py``)."""

from __future__ import annotations

from datetime import datetime

from competitions.models import Track
from django.db import transaction
from django.utils import timezone
from leaderboards.incremental import refresh_student
from teams.participants import participant

from submissions.models import Status, Submission

from .models import Extension, FinalPick, Hiding
from .rules import policy


class NotAllowed(Exception):
    """The change is refused; ``str()`` says why in words for the student or organizer."""


def _refresh(track_id: int, user_id: int) -> None:
    """Re-rank ``user_id``'s participant on the track (the student's rules changed)."""
    refresh_student(Track.objects.select_for_update().get(pk=track_id), user_id)


def set_final(submission: Submission, user, final: bool, now: datetime | None = None) -> None:
    """Mark (or unmark) one of the student's own scored submissions as final, before the
    track's deadline (or the student's extended one), at most ``Policy.final_picks`` per track."""
    now = now or timezone.now()
    if submission.user_id != user.pk or submission.is_baseline:
        raise NotAllowed("You can only pick your own submissions.")
    # Read now, not from a cached relation: the deadline may have moved since.
    track = Track.objects.select_related("competition").get(pk=submission.track_id)
    from .rules import upload_window

    if upload_window(track, user, now) not in ("open", "extended"):
        raise NotAllowed("The deadline has passed: final picks can no longer change.")
    with transaction.atomic():
        Track.objects.select_for_update().get(pk=track.pk)
        if not final:
            FinalPick.objects.filter(submission=submission).delete()
        else:
            if submission.status != Status.SCORED:
                raise NotAllowed("Only a scored submission within the limits can be final.")
            limit = policy(track.competition).final_picks
            # A team's members share its N picks (``teams``): the private board ranks the best.
            who = participant(track.competition_id, user.pk)
            picked = FinalPick.objects.filter(submission__track=track,
                                              submission__user_id__in=who.user_ids)
            if not picked.filter(submission=submission).exists():
                if picked.count() >= limit:
                    whose = f"Your team ({who.team_name})" if who.is_team else "You"
                    raise NotAllowed(
                        f"{whose} may mark at most {limit} submission(s) of track {track.slug} "
                        "as final; unmark one first.")
                FinalPick.objects.create(submission=submission)
        _refresh(track.pk, submission.user_id)


def final_ids(user, competition) -> set[int]:
    return set(FinalPick.objects.filter(submission__user=user,
                                        submission__track__competition=competition)
               .values_list("submission_id", flat=True))


def grant_extension(competition, user, *, deadline: datetime | None, extra_uploads: int = 0,
                    note: str = "") -> Extension:
    """Give (or change) one student's own deadline and extra uploads; the boards of the
    competition are ranked again (late uploads may now count)."""
    if deadline is not None and deadline <= competition.start:
        raise NotAllowed("An extended deadline must come after the competition's start.")
    if extra_uploads < 0:
        raise NotAllowed("Extra uploads cannot be negative.")
    with transaction.atomic():
        track_ids = list(competition.tracks.values_list("pk", flat=True))
        for track_id in track_ids:
            Track.objects.select_for_update().get(pk=track_id)
        granted, _ = Extension.objects.update_or_create(
            competition=competition, user=user,
            defaults={"deadline": deadline, "extra_uploads": extra_uploads, "note": note[:200]})
        for track_id in track_ids:
            _refresh(track_id, user.pk)
    return granted


def hide(submission: Submission, reason: str, by) -> Hiding:
    reason = reason.strip()
    if not reason:
        raise NotAllowed("Say why: the student sees the reason.")
    with transaction.atomic():
        Track.objects.select_for_update().get(pk=submission.track_id)
        hiding, _ = Hiding.objects.update_or_create(
            submission=submission, defaults={"reason": reason, "hidden_by": by})
        _refresh(submission.track_id, submission.user_id)
    return hiding


def unhide(submission: Submission) -> None:
    with transaction.atomic():
        Track.objects.select_for_update().get(pk=submission.track_id)
        Hiding.objects.filter(submission=submission).delete()
        _refresh(submission.track_id, submission.user_id)


def marks(competition, submissions) -> dict[int, dict]:
    """Per submission id: ``final``, ``late``, ``hidden`` (its reason) for the student page and
    the organizer's list (three queries whatever the number of submissions)."""
    from .eligibility import is_late

    ids = [s.pk for s in submissions]
    finals = set(FinalPick.objects.filter(submission_id__in=ids)
                 .values_list("submission_id", flat=True))
    hidden = dict(Hiding.objects.filter(submission_id__in=ids)
                  .values_list("submission_id", "reason"))
    extended = dict(Extension.objects.filter(competition=competition, deadline__isnull=False)
                    .values_list("user_id", "deadline"))
    out = {}
    for s in submissions:
        out[s.pk] = {
            "final": s.pk in finals,
            "late": not s.is_baseline and is_late(s.created_at, s.track.closes_at,
                                                  extended.get(s.user_id)),
            "hidden": hidden.get(s.pk),
        }
    return out


def student_marks(user, competition, submissions) -> dict:
    """Set ``marks`` on each of the student's submissions (final, late, hidden, ``can_pick``)
    and return what the page says about final picks (limit, picked per track)."""
    from .rules import upload_window

    limit = policy(competition).final_picks
    found = marks(competition, submissions)
    open_tracks: dict[int, bool] = {}
    for s in submissions:
        if s.track_id not in open_tracks:
            open_tracks[s.track_id] = upload_window(s.track, user) in ("open", "extended")
        m = found[s.pk]
        m["can_pick"] = (limit > 0 and open_tracks[s.track_id] and not s.is_baseline
                         and not m["late"] and (m["final"] or s.status == Status.SCORED))
        s.marks = m
    return {"final_picks": limit}
