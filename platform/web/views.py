"""Server-rendered pages: the competition list, a competition's live leaderboard and a student's
own page (upload and submissions). Who may see what comes from ``competitions.permissions`` (the
same classes the API uses); the rows come from the leaderboard service; uploads go through
``submissions.services``. A bad parameter raises ``BadRequest``: ``web.errors`` answers it.
"""

from __future__ import annotations

from competitions.models import Competition
from competitions.permissions import competition_for
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods
from notifications.services import wants_email
from rest_framework.throttling import UserRateThrottle

from submissions.models import Status
from submissions.quotas import QuotaExceeded
from submissions.services import UploadRefused, submit

from .forms import UploadForm
from .leaderboard import PANEL_CACHE_SECONDS, leaderboard_context, panel_data
from .student import api_token, student_context


class UploadThrottle(UserRateThrottle):
    """The API's upload rate (``uploads``), counted in the same cache entry as the API's uploads,
    so the page and the API share one allowance."""

    scope = "uploads"


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    visible = Competition.objects.visible_to(request.user).prefetch_related("tracks")
    return render(request, "web/home.html", {"competitions": visible})


@require_GET
def leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    competition = competition_for(request, slug)
    context = leaderboard_context(request, competition, request.GET)
    context["panel"] = rendered_panel(request, context)
    return render(request, "web/leaderboard.html", context)


@require_GET
def leaderboard_panel(request: HttpRequest, slug: str) -> HttpResponse:
    """The table and chart alone: what the page's script fetches to refresh itself."""
    competition = competition_for(request, slug)
    context = leaderboard_context(request, competition, request.GET)
    return HttpResponse(rendered_panel(request, context))


def rendered_panel(request: HttpRequest, context: dict) -> str:
    """The board's table and chart as HTML, from the short-lived cache when it has them."""
    html = cache.get(context["panel_cache_key"])
    if html is None:
        html = render_to_string("web/_leaderboard_panel.html",
                                {**context, **panel_data(context)}, request)
        cache.set(context["panel_cache_key"], str(html), PANEL_CACHE_SECONDS)
    return mark_safe(html)  # noqa: S308 - our own template's output


@login_required
@require_http_methods(["GET", "POST"])
def student(request: HttpRequest, slug: str) -> HttpResponse:
    competition = competition_for(request, slug)
    if request.method == "POST":
        return upload(request, competition)
    form = UploadForm(competition)
    context = student_context(request, competition, form)
    context["api_token"] = api_token(request.user)
    context["email_results"] = wants_email(request.user)
    return render(request, "web/student.html", context)


@login_required
@require_GET
def student_panel(request: HttpRequest, slug: str) -> HttpResponse:
    """The student's submissions alone: what the page's script fetches while scoring runs."""
    competition = competition_for(request, slug)
    return render(request, "web/_submissions.html", student_context(request, competition))


def upload(request: HttpRequest, competition) -> HttpResponse:
    """Hand the form's file to the submissions service; answer JSON to the page's script, or
    redirect back with a message when the form was posted without JavaScript."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    throttle = UploadThrottle()
    if not throttle.allow_request(request, None):
        wait = throttle.wait() or 60
        return _upload_answer(request, competition, wants_json, 429,
                              error=f"Too many uploads in a short time: try again in "
                                    f"{wait:.0f} seconds.")
    form = UploadForm(competition, request.POST, request.FILES)
    if not form.is_valid():
        error = " ".join(str(e) for errors in form.errors.values() for e in errors)
        return _upload_answer(request, competition, wants_json, 400, error=error, form=form)
    track, file = form.cleaned_data["track"], form.cleaned_data["file"]
    try:
        submission = submit(track, request.user, file.chunks(), label=file.name or "")
    except UploadRefused as exc:
        return _upload_answer(request, competition, wants_json, exc.status, error=str(exc))
    except QuotaExceeded as exc:
        return _upload_answer(request, competition, wants_json, 429, error=str(exc))
    return _upload_answer(request, competition, wants_json, 201, submission=submission)


def _upload_answer(request, competition, wants_json: bool, status: int, *, error: str = "",
                   submission=None, form=None) -> HttpResponse:
    text = error if submission is None else upload_outcome(submission)
    if wants_json:
        body = {"ok": submission is not None, "message": text}
        if submission is not None:
            body.update(id=submission.pk, status=submission.status)
        return JsonResponse(body, status=status)
    if form is not None:  # show the form again with its errors
        return render(request, "web/student.html",
                      student_context(request, competition, form), status=status)
    ok = submission is not None and submission.status not in (Status.REJECTED, Status.FAILED)
    level = messages.SUCCESS if ok else messages.ERROR
    messages.add_message(request, level, text)
    return redirect(reverse("web:student", args=[competition.slug]))


def upload_outcome(submission) -> str:
    """One sentence saying what happened to an upload."""
    name = submission.label or "Your model"
    if getattr(submission, "duplicate", False):
        return (f"This file is identical to your submission #{submission.pk} "
                f"({submission.get_status_display().lower()}): no upload was used, its result "
                f"is below.")
    if submission.status == Status.REJECTED:
        return f"{name} was rejected. {submission.error}"
    if submission.status == Status.FAILED:
        return f"{name} could not be checked. {submission.error}"
    if submission.status in (Status.RECEIVED, Status.VALIDATING):
        # Checked by a worker of the validation queue: the list below shows the outcome.
        return f"{name} was received and is being checked; its status below updates itself."
    return f"{name} was received and is {submission.get_status_display().lower()} for scoring."
