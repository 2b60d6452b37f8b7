"""What the student page shows: the upload form, quota left per track and own submissions."""

from __future__ import annotations

from competitions.permissions import MaySeePrivate, allowed
from coursework.rules import extra_uploads
from coursework.services import student_marks
from django.urls import reverse
from django.utils import timezone
from leaderboards import ranking
from teams.services import student_panel as team_panel

from evaluator.tasks import get_task
from submissions import quotas
from submissions.models import FINAL_STATUSES, Status, Submission

from .chart import build_history
from .forms import UploadForm
from .leaderboard import my_history, results_url, standings

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
    extra = extra_uploads(track, user)  # an extension's extra uploads raise both limits
    return {"track": track, "today": max(track.daily_limit + extra - used.last_24h, 0),
            "total": max(track.total_limit + extra - used.total, 0),
            "daily_limit": track.daily_limit + extra, "total_limit": track.total_limit + extra}


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


WINNERS_SHOWN = 3


def final_results(request, competition, tracks: list) -> dict:
    """The winners of each track once the competition has closed: the top of the accuracy board,
    on the private split when the viewer may see it (it decides the final ranking), else public."""
    split = "private" if allowed(MaySeePrivate, request, competition) else "public"
    items = []
    for track in tracks:
        rows = ranking.leaderboard_rows(track, ranking.ACCURACY, split, ranking.ROW_FIELDS,
                                        limit=WINNERS_SHOWN + 10)
        items.append({"track": track,
                      "winners": [row for row in rows if not row["is_baseline"]][:WINNERS_SHOWN]})
    return {"split": split, "tracks": items, "url": results_url(competition)}


def progress(request, competition, tracks: list) -> list[dict]:
    """Per track: the student's rank in each category and their scores over time."""
    splits = ("public", "private") if allowed(MaySeePrivate, request, competition) else ("public",)
    items = []
    for track in tracks:
        task = get_task(track.task)
        items.append({
            "track": track, "show_split": len(splits) > 1,
            "standings": standings(track, request.user, splits),
            "history": build_history(my_history(track, request.user, task), task=task),
            "chart_id": f"my-history-{track.slug}",
            "chart_title": f"Your scores over time, track {track.slug}",
        })
    return items


def student_context(request, competition, form: UploadForm | None = None) -> dict:
    submissions = with_queue_positions(own_submissions(request.user, competition))
    tracks = list(competition.tracks.all())
    now = timezone.now()
    state = ("upcoming" if now < competition.start else
             "open" if now < competition.deadline else "closed")
    # Final picks, late and hidden marks (issue 12's coursework app).
    course = student_marks(request.user, competition, submissions)
    return {
        "schedule_state": state,
        # Called by the full page's template only (the polled list never reads them).
        "progress": lambda: progress(request, competition, tracks),
        "results": lambda: (final_results(request, competition, tracks)
                            if state == "closed" else None),
        "course": course,
        # The student's team, its members and invitations (None: the competition has no teams).
        "team_panel": lambda: team_panel(request.user, competition),
        "competition": competition,
        "form": form,
        "tracks": tracks,
        "quotas": [quota_left(track, request.user) for track in tracks],
        "submissions": submissions,
        "in_progress": any(s.status not in FINAL_STATUSES for s in submissions),
        "show_private": allowed(MaySeePrivate, request, competition),
        "panel_url": reverse("web:student-panel", args=[competition.slug]),
    }
