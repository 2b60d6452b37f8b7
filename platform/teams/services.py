"""Creating a team, inviting a classmate, accepting or declining, leaving (the rules are
``teams.rules``; this module reads the rows they need and writes the change).

Every change runs in one transaction that first locks the competition's track rows (in id order,
the lock order of ``submissions.lifecycle``: a score written at the same moment waits, so the
"no scored submission yet" check cannot be overtaken) and then the ``Participation`` rows of the
students concerned (the rows an upload locks to count its quota, ``submissions.quotas``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from competitions.models import Competition, Participation, Track
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from submissions.models import Status, Submission

from . import rules
from .models import Invitation, Membership, Team
from .rules import NotAllowed

__all__ = ["NotAllowed", "accept", "cancel", "create_team", "decline", "has_scored", "invite",
           "leave", "team_of"]

SCORED_STATUSES = (Status.SCORED, Status.OVER_LIMIT)


def team_of(user, competition: Competition) -> Team | None:
    return Team.objects.of_member(user, competition).first()


def has_scored(competition: Competition, user_ids: Iterable[int]) -> bool:
    """Whether any of the students has a scored upload (within the limits or not) in it."""
    return Submission.objects.filter(track__competition=competition, user_id__in=list(user_ids),
                                     is_baseline=False, status__in=SCORED_STATUSES).exists()


def _lock(competition: Competition, user_ids: Iterable[int]) -> None:
    for track_id in competition.tracks.order_by("pk").values_list("pk", flat=True):
        Track.objects.select_for_update().get(pk=track_id)
    list(Participation.objects.select_for_update().filter(
        competition=competition, user_id__in=sorted(set(user_ids))).order_by("pk"))


def _fresh(competition: Competition) -> Competition:
    # The organizer may have changed the settings since the caller read the row.
    return Competition.objects.get(pk=competition.pk)


def _member_ids(team: Team) -> list[int]:
    return list(team.memberships.values_list("user_id", flat=True))


def create_team(competition: Competition, user, name: str,
                now: datetime | None = None) -> Team:
    """A new team with ``user`` as its first member."""
    now = now or timezone.now()
    name = rules.clean_name(name)
    with transaction.atomic():
        _lock(competition, [user.pk])
        competition = _fresh(competition)
        rules.check_open(teams_enabled=competition.teams_enabled, now=now,
                         deadline=competition.deadline)
        if not competition.is_participant(user):
            raise NotAllowed("Join the competition first.")
        if team_of(user, competition) is not None:
            raise NotAllowed("You are already in a team: leave it first.")
        rules.check_not_frozen(student_has_scored=has_scored(competition, [user.pk]))
        if Team.objects.filter(competition=competition, name__iexact=name).exists():
            raise NotAllowed(f"There is already a team called {name!r}: choose another name.")
        try:
            with transaction.atomic():
                team = Team.objects.create(competition=competition, name=name, created_by=user)
                Membership.objects.create(team=team, competition=competition, user=user)
        except IntegrityError:  # the same name, or another team, at the same moment
            raise NotAllowed("That name was just taken, or you just joined a team: reload the "
                             "page and try again.") from None
        Invitation.objects.filter(user=user, team__competition=competition).delete()
    return team


def invite(team: Team, by, username: str, now: datetime | None = None) -> Invitation:
    """``by`` (a member) invites the enrolled student called ``username``."""
    now = now or timezone.now()
    username = (username or "").strip()
    competition = team.competition
    invitee = get_user_model().objects.filter(username=username).first() if username else None
    with transaction.atomic():
        members = _member_ids(team)
        _lock(competition, members + ([invitee.pk] if invitee else []))
        competition = _fresh(competition)
        rules.check_open(teams_enabled=competition.teams_enabled, now=now,
                         deadline=competition.deadline)
        members = _member_ids(team)
        if by.pk not in members:
            raise NotAllowed("Only the team's members can invite.")
        if invitee is None or not competition.is_participant(invitee):
            raise NotAllowed(f"No student called {username!r} takes part in this competition.")
        if invitee.pk in members:
            raise NotAllowed(f"{username} is already in your team.")
        if Membership.objects.filter(competition=competition, user=invitee).exists():
            raise NotAllowed(f"{username} is already in another team.")
        if team.invitations.filter(user=invitee).exists():
            raise NotAllowed(f"{username} is already invited: they accept or decline on their "
                             "page.")
        rules.check_not_frozen(team_has_scored=has_scored(competition, members))
        rules.check_invite(limit=competition.team_size_limit, members=len(members),
                           pending=team.invitations.count())
        return Invitation.objects.create(team=team, user=invitee, invited_by=by)


def accept(invitation: Invitation, user, now: datetime | None = None) -> Team:
    now = now or timezone.now()
    if invitation.user_id != user.pk:
        raise NotAllowed("This invitation is not yours.")
    team = invitation.team
    competition = team.competition
    with transaction.atomic():
        _lock(competition, [*_member_ids(team), user.pk])
        competition = _fresh(competition)
        rules.check_open(teams_enabled=competition.teams_enabled, now=now,
                         deadline=competition.deadline)
        if not Invitation.objects.filter(pk=invitation.pk).exists():
            raise NotAllowed("This invitation was withdrawn.")
        if team_of(user, competition) is not None:
            raise NotAllowed("You are already in a team: leave it first.")
        members = _member_ids(team)
        rules.check_not_frozen(team_has_scored=has_scored(competition, members),
                               student_has_scored=has_scored(competition, [user.pk]))
        rules.check_accept(limit=competition.team_size_limit, members=len(members))
        Membership.objects.create(team=team, competition=competition, user=user)
        # In a team now: the student's other invitations of this competition are moot.
        Invitation.objects.filter(user=user, team__competition=competition).delete()
    return team


def decline(invitation: Invitation, user) -> None:
    if invitation.user_id != user.pk:
        raise NotAllowed("This invitation is not yours.")
    invitation.delete()


def cancel(invitation: Invitation, by) -> None:
    """A member withdraws a pending invitation of their team."""
    if not invitation.team.memberships.filter(user=by).exists():
        raise NotAllowed("Only the team's members can withdraw its invitations.")
    invitation.delete()


def leave(team: Team, user, now: datetime | None = None) -> None:
    """``user`` leaves ``team``; the last one to leave deletes it (and its invitations)."""
    now = now or timezone.now()
    competition = team.competition
    with transaction.atomic():
        members = _member_ids(team)
        _lock(competition, members)
        competition = _fresh(competition)
        if not competition.teams_enabled:
            raise NotAllowed("This competition has no teams.")
        if now >= competition.deadline:
            raise NotAllowed("The deadline has passed: teams can no longer change.")
        members = _member_ids(team)
        if user.pk not in members:
            raise NotAllowed("You are not in this team.")
        rules.check_not_frozen(team_has_scored=has_scored(competition, members))
        Membership.objects.filter(team=team, user=user).delete()
        if len(members) == 1:
            team.delete()


def student_panel(user, competition: Competition, now: datetime | None = None) -> dict | None:
    """What the student page says about teams (None: the competition has none): the student's
    team, its members and pending invitations, the seats left, the invitations addressed to
    the student, and whether membership can still change (``rules``)."""
    if not competition.teams_enabled:
        return None
    now = now or timezone.now()
    team = team_of(user, competition)
    limit = competition.team_size_limit
    invitations = list(Invitation.objects.for_invitee(user, competition)
                       .select_related("team", "invited_by"))
    if team is None:
        frozen = has_scored(competition, [user.pk])
        return {"team": None, "limit": limit, "invitations": invitations,
                "open": now < competition.deadline, "frozen": frozen}
    members = list(team.memberships.select_related("user"))
    pending = list(team.invitations.select_related("user"))
    return {"team": team, "limit": limit, "members": [m.user for m in members],
            "pending": pending, "invitations": [],
            "seats": rules.seats_left(limit=limit, members=len(members), pending=len(pending)),
            "open": now < competition.deadline,
            "frozen": has_scored(competition, [m.user_id for m in members])}
