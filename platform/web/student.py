"""What the student page shows: the upload form, quota left per track and own submissions."""

from __future__ import annotations

from competitions.permissions import MaySeePrivate, allowed
from coursework.services import student_marks
from django.urls import reverse

from submissions import quotas
from submissions.models import FINAL_STATUSES, Status, Submission

from .forms import UploadForm

SUBMISSIONS_SHOWN = 50


def own_submissions(user, competition) -> list[Submission]:
    """The user's newest submissions in ``competition`` with their scores (one query)."""
    return list(
        Submission.objects.filter(user=user, track__competition=competition)
        .select_related("track", "score")
        .order_by("-created_at", "-id")[:SUBMISSIONS_SHOWN]
    )


def quota_left(track, user) -> dict:
    used = quotas.usage(track, user)
    return {"track": track, "today": max(track.daily_limit - used.last_24h, 0),
            "total": max(track.total_limit - used.total, 0)}


def api_token(user) -> str:
    """The user's REST API token (made on first use), for uploading from scripts."""
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key


def with_queue_positions(submissions: list[Submission]) -> list[Submission]:
    """Set ``queue`` on each queued submission: its place in the fair queue and the estimated
    wait (``submissions.queue.queue_position``); None on the others."""
    from submissions.queue import queue_position

    for submission in submissions:
        submission.queue = (queue_position(submission)
                            if submission.status == Status.QUEUED else None)
    return submissions


def student_context(request, competition, form: UploadForm | None = None) -> dict:
    submissions = with_queue_positions(own_submissions(request.user, competition))
    tracks = list(competition.tracks.all())
    # Final picks, late and hidden marks (issue 12's coursework app).
    course = student_marks(request.user, competition, submissions)
    return {
        "course": course,
        "competition": competition,
        "form": form,
        "tracks": tracks,
        "quotas": [quota_left(track, request.user) for track in tracks],
        "submissions": submissions,
        "in_progress": any(s.status not in FINAL_STATUSES for s in submissions),
        "show_private": allowed(MaySeePrivate, request, competition),
        "panel_url": reverse("web:student-panel", args=[competition.slug]),
    }
