"""Who a "participant" is (SPEC §4's ranking unit, the quota's holder): a student's team when
the competition has teams turned on and the student is in one, else the student alone.

The one place that answers it, for the ranking (``leaderboards.ranking``/``incremental``), the
quota (``submissions.quotas``), final picks (``coursework``), the grade file (``results``) and
the pages. Each function is one query; none reads more than the teams of one competition.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import Membership


@dataclass(frozen=True)
class Participant:
    """``user_ids``: the students whose uploads count as this participant's (sorted)."""

    user_ids: tuple[int, ...]
    team_id: int | None = None
    team_name: str = ""

    @property
    def is_team(self) -> bool:
        return self.team_id is not None


def _enabled(competition_id: int):
    return Membership.objects.filter(competition_id=competition_id,
                                     competition__teams_enabled=True)


def participant(competition_id: int, user_id: int) -> Participant:
    """``user_id``'s participant in the competition: their team's members, or themselves."""
    rows = list(_enabled(competition_id).filter(team__memberships__user_id=user_id)
                .values_list("user_id", "team_id", "team__name"))
    if not rows:
        return Participant((user_id,))
    return Participant(tuple(sorted(row[0] for row in rows)), rows[0][1], rows[0][2])


def team_labels(competition_id: int) -> dict[int, tuple[int, str]]:
    """Every team member of the competition: user id -> (team id, team name); empty while the
    competition has teams turned off (every student is then their own participant)."""
    return {user_id: (team_id, name) for user_id, team_id, name in
            _enabled(competition_id).values_list("user_id", "team_id", "team__name")}


def participant_key(user_id: int, labels: dict[int, tuple[int, str]]) -> tuple[str, int]:
    """A hashable name of ``user_id``'s participant, given ``team_labels``."""
    team = labels.get(user_id)
    return ("team", team[0]) if team else ("student", user_id)
