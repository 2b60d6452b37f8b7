"""The team rules as plain functions over plain data (tests call them directly); each refusal
says why in words a student understands. ``teams.services`` reads the rows and asks these.

- Teams are turned on per competition (``Competition.teams_enabled``, off by default).
- A student is in at most one team per competition, and only students enrolled in the
  competition can be invited.
- A team has at most ``Competition.team_size_limit`` members; pending invitations hold a seat,
  so an invitation is refused when members plus pending invitations fill the team, and accepting
  is refused when the team is already full (the limit may have been lowered since).
- Membership is frozen once it matters: nobody joins, leaves or is invited after the
  competition's deadline, or once the team (any member) has a scored submission; and a student
  with a scored submission of their own cannot create or join a team. Teams therefore form
  before their members' first score, so a change of membership never moves a leaderboard row or
  rewrites a result already shown (uploads still being checked or scored come along and count
  for the team). A team whose last member leaves is deleted.
"""

from __future__ import annotations

from datetime import datetime

from .models import TEAM_NAME_MAX

MIN_TEAM_SIZE = 2
MAX_TEAM_SIZE = 20


class NotAllowed(Exception):
    """The change is refused; ``str()`` says why in words for the student."""


def check_open(*, teams_enabled: bool, now: datetime, deadline: datetime) -> None:
    if not teams_enabled:
        raise NotAllowed("This competition has no teams: everyone takes part on their own.")
    if now >= deadline:
        raise NotAllowed("The deadline has passed: teams can no longer change.")


def check_not_frozen(*, team_has_scored: bool = False, student_has_scored: bool = False) -> None:
    """Refuse a change of membership once a score counts (see the module's docstring)."""
    if team_has_scored:
        raise NotAllowed("Your team already has a scored submission: its members can no longer "
                         "change (ask the organizers if something is wrong).")
    if student_has_scored:
        raise NotAllowed("You already have a scored submission on your own: teams are formed "
                         "before their members' first score.")


def clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise NotAllowed("Give your team a name.")
    if len(name) > TEAM_NAME_MAX:
        raise NotAllowed(f"A team name has at most {TEAM_NAME_MAX} characters.")
    return name


def seats_left(*, limit: int, members: int, pending: int) -> int:
    """Seats still free: pending invitations hold a seat each."""
    return max(limit - members - pending, 0)


def check_invite(*, limit: int, members: int, pending: int) -> None:
    if seats_left(limit=limit, members=members, pending=pending) < 1:
        raise NotAllowed(
            f"Your team is full: at most {limit} students per team, and pending invitations "
            f"hold a seat ({members} member(s), {pending} pending). Cancel an invitation first.")


def check_accept(*, limit: int, members: int) -> None:
    if members >= limit:
        raise NotAllowed(f"That team is already full (at most {limit} students per team).")


def check_size_limit(limit: int | None) -> None:
    """The organizer's setting (raised as ``ValueError`` for the form)."""
    if limit is None or not MIN_TEAM_SIZE <= limit <= MAX_TEAM_SIZE:
        raise ValueError(f"a team has between {MIN_TEAM_SIZE} and {MAX_TEAM_SIZE} students")
