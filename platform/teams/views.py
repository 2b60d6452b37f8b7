"""The student's team actions from their page (one form per action, each back to the page).

Thin: the rules are ``teams.rules``, the changes ``teams.services``; who may touch which
invitation is the querysets' (``for_invitee``, ``of_team_member``): anyone else's is a 404."""

from __future__ import annotations

from competitions.permissions import competition_for
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from . import services
from .models import Invitation

ACTIONS = ("create", "invite", "accept", "decline", "cancel", "leave")


def _invitation(request: HttpRequest, competition, mine: bool) -> Invitation:
    pk = request.POST.get("invitation", "")
    queryset = (Invitation.objects.for_invitee(request.user, competition) if mine
                else Invitation.objects.of_team_member(request.user, competition))
    found = queryset.select_related("team__competition").filter(pk=pk).first() \
        if pk.isdigit() else None
    if found is None:
        raise Http404("No such invitation (it may have been withdrawn or answered).")
    return found


@login_required
@require_POST
def team_action(request: HttpRequest, slug: str) -> HttpResponse:
    competition = competition_for(request, slug)
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        raise Http404("No such team action.")
    user = request.user
    try:
        if action == "create":
            team = services.create_team(competition, user, request.POST.get("name", ""))
            done = f"Team {team.name} is made: invite your classmates by their username."
        elif action == "invite":
            team = services.team_of(user, competition)
            if team is None:
                raise services.NotAllowed("Make a team first.")
            username = request.POST.get("username", "").strip()
            services.invite(team, user, username)
            done = f"{username} is invited to {team.name}: they accept on their page."
        elif action == "accept":
            team = services.accept(_invitation(request, competition, mine=True), user)
            done = f"You are now in team {team.name}."
        elif action == "decline":
            invitation = _invitation(request, competition, mine=True)
            services.decline(invitation, user)
            done = f"You declined the invitation to {invitation.team.name}."
        elif action == "cancel":
            invitation = _invitation(request, competition, mine=False)
            services.cancel(invitation, user)
            done = f"The invitation of {invitation.user.username} is withdrawn."
        else:
            team = services.team_of(user, competition)
            if team is None:
                raise services.NotAllowed("You are not in a team.")
            services.leave(team, user)
            done = f"You left team {team.name}."
    except services.NotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect("web:student", slug=competition.slug)
