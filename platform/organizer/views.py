"""The organizer's pages: set up and edit a competition and its tracks, every submission with
filters and its full scorecard, hiding, extensions and re-scoring. Thin: the rules are in the
forms (the command line's checks) and in the services of ``competitions``, ``coursework`` and
``submissions.rescoring``. Anyone but an organizer gets a 404 (the pages stay unknown)."""

from __future__ import annotations

from competitions.models import Track
from competitions.permissions import IsOrganizer, MayCreateCompetitions, allowed, competition_for
from competitions.services import create_competition
from coursework import services as coursework
from coursework.models import Extension
from coursework.rules import policy
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from leaderboards.ranking import rebuild_track

from submissions.models import Submission
from submissions.rescoring import RescoreRefused, rescore, rescore_progress, score_versions

from .forms import (
    CompetitionForm,
    ExtensionForm,
    HideForm,
    NewCompetitionForm,
    PolicyForm,
    SubmissionFilter,
    TrackForm,
)

PAGE_SIZE = 100


def _organized(request: HttpRequest, slug: str):
    competition = competition_for(request, slug)
    if not allowed(IsOrganizer, request, competition):
        raise Http404("No such page.")
    return competition


@login_required
@require_http_methods(["GET", "POST"])
def new_competition(request: HttpRequest) -> HttpResponse:
    if not MayCreateCompetitions().has_permission(request, None):
        raise Http404("No such page.")
    form = NewCompetitionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            competition = create_competition(
                data["slug"], data["title"], data["tasks"], description=data["description"],
                start=data["start"], deadline=data["deadline"], visibility=data["visibility"],
                organizers=[request.user])
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            competition.reveal_private_after_deadline = data["reveal_private_after_deadline"]
            competition.teams_enabled = data["teams_enabled"]
            competition.team_size_limit = data["team_size_limit"]
            competition.save(update_fields=["reveal_private_after_deadline", "teams_enabled",
                                            "team_size_limit"])
            messages.success(request, f"{competition.title} is set up: check each track's limits.")
            return redirect("organizer:edit", slug=competition.slug)
    return render(request, "organizer/new.html", {"form": form},
                  status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, slug: str) -> HttpResponse:
    competition = _organized(request, slug)
    course = policy(competition)
    form = CompetitionForm(request.POST or None, instance=competition, prefix="c")
    policy_form = PolicyForm(request.POST or None, instance=course, prefix="p")
    if request.method == "POST" and form.is_valid() and policy_form.is_valid():
        with transaction.atomic():
            competition = form.save()
            policy_form.save()
            for track_id in competition.tracks.values_list("pk", flat=True):
                rebuild_track(Track.objects.select_for_update().get(pk=track_id))
        messages.success(request, "Saved.")
        return redirect("organizer:edit", slug=competition.slug)
    tracks = [(track, score_versions(track)) for track in competition.tracks.all()]
    return render(request, "organizer/edit.html", {
        "competition": competition, "form": form, "policy_form": policy_form, "tracks": tracks,
        "track_form": TrackForm(competition=competition, prefix="t"),
    }, status=400 if form.errors or policy_form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def track(request: HttpRequest, slug: str, track_slug: str | None = None) -> HttpResponse:
    """Edit one track (or add one: no ``track_slug``); the board is ranked again on save."""
    competition = _organized(request, slug)
    instance = (get_object_or_404(competition.tracks, slug=track_slug) if track_slug
                else Track(competition=competition))
    form = TrackForm(request.POST or None, instance=instance, competition=competition,
                     prefix="t")
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            saved = form.save()
            rebuild_track(Track.objects.select_for_update().get(pk=saved.pk))
        messages.success(request, f"Track {saved.slug} saved; its leaderboard was ranked again.")
        return redirect("organizer:edit", slug=competition.slug)
    return render(request, "organizer/track.html", {
        "competition": competition, "track": instance if track_slug else None, "form": form,
        "progress": rescore_progress(instance) if track_slug else None,
        "versions": score_versions(instance) if track_slug else None,
    }, status=400 if form.errors else 200)


@login_required
@require_POST
def rescore_track(request: HttpRequest, slug: str, track_slug: str) -> HttpResponse:
    competition = _organized(request, slug)
    chosen = get_object_or_404(competition.tracks, slug=track_slug)
    try:
        queued = rescore(chosen)
    except RescoreRefused as exc:
        messages.error(request, f"Not re-scored: {exc}.")
    else:
        messages.success(request, f"{queued} submission(s) of {chosen.slug} queued for "
                                  "re-scoring; their scores stay until the new ones land.")
    return redirect("organizer:track", slug=slug, track_slug=track_slug)


@login_required
def submissions(request: HttpRequest, slug: str) -> HttpResponse:
    competition = _organized(request, slug)
    query = SubmissionFilter(request.GET or None, competition=competition)
    rows = (Submission.objects.filter(track__competition=competition)
            .select_related("track", "user", "score").order_by("-created_at", "-id"))
    if query.is_valid():
        if query.cleaned_data["track"]:
            rows = rows.filter(track__slug=query.cleaned_data["track"])
        if query.cleaned_data["status"]:
            rows = rows.filter(status=query.cleaned_data["status"])
        if query.cleaned_data["student"]:
            rows = rows.filter(user__username__icontains=query.cleaned_data["student"])
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    items = list(page.object_list)
    marks = coursework.marks(competition, items)
    for item in items:
        item.marks = marks[item.pk]
    return render(request, "organizer/submissions.html", {
        "competition": competition, "query": query, "page": page, "items": items,
        "filters": request.GET.urlencode() if query.is_valid() else "",
    }, status=400 if query.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def submission(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    competition = _organized(request, slug)
    item = get_object_or_404(Submission.objects.select_related("track", "user", "score"),
                             pk=pk, track__competition=competition)
    form = HideForm(request.POST or None)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "unhide":
            coursework.unhide(item)
            messages.success(request, "Shown again and ranked as before.")
            return redirect("organizer:submission", slug=slug, pk=pk)
        if action == "rescore":
            try:
                queued = rescore(item.track, item)
            except RescoreRefused as exc:
                messages.error(request, f"Not re-scored: {exc}.")
            else:
                messages.success(request, "Queued for re-scoring." if queued else
                                 "A re-score of it is already waiting.")
            return redirect("organizer:submission", slug=slug, pk=pk)
        if form.is_valid():
            coursework.hide(item, form.cleaned_data["reason"], request.user)
            messages.success(request, "Hidden from the leaderboard; the student sees why.")
            return redirect("organizer:submission", slug=slug, pk=pk)
    item.marks = coursework.marks(competition, [item])[item.pk]
    return render(request, "organizer/submission.html", {
        "competition": competition, "item": item, "form": form,
        "rescores": item.rescores.order_by("-created_at")[:10],
    }, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def extensions(request: HttpRequest, slug: str) -> HttpResponse:
    competition = _organized(request, slug)
    form = ExtensionForm(request.POST or None, competition=competition)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            coursework.grant_extension(competition, form.user, deadline=data["deadline"],
                                       extra_uploads=data["extra_uploads"], note=data["note"])
        except coursework.NotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Extension for {form.user.username} saved.")
            return redirect("organizer:extensions", slug=slug)
    return render(request, "organizer/extensions.html", {
        "competition": competition, "form": form,
        "extensions": Extension.objects.filter(competition=competition).select_related("user")
        .order_by("user__username"),
    }, status=400 if form.errors else 200)
