"""The student's final picks from their page (a form per submission)."""

from __future__ import annotations

from competitions.permissions import competition_for
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from submissions.models import Submission

from . import services


@login_required
@require_POST
def set_final(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    competition = competition_for(request, slug)
    # Only the student's own: anyone else's is unknown here (404, never 403).
    submission = (Submission.objects.select_related("track__competition")
                  .filter(pk=pk, user=request.user, track__competition=competition).first())
    if submission is None:
        raise Http404("No such submission.")
    final = request.POST.get("final") == "true"
    try:
        services.set_final(submission, request.user, final)
    except services.NotAllowed as exc:
        messages.error(request, str(exc))
    else:
        name = submission.label or f"#{submission.pk}"
        messages.success(request, f"{name} is {'now' if final else 'no longer'} one of your final "
                                  f"submissions on {submission.track.slug}.")
    return redirect("web:student", slug=competition.slug)
