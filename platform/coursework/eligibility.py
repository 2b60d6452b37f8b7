"""Which scored submissions the leaderboard may rank, for ``leaderboards.ranking`` to call.

Rules (issue 12):

- a hidden submission (``Hiding``) is ranked on neither split;
- a late upload (made at or after its track's deadline, and after the student's own extended
  deadline if they have one) is scored and shown to its student, never ranked;
- on the private split each student is ranked on their final picks only; a student who marked
  none is ranked on their best public submission (highest public accuracy, then the earlier one),
  as Kaggle does. Baselines are never restricted (they are never ranked anyway).
- in a team (``teams``), the team is the participant: its final picks are all its members'
  picks together (at most ``Policy.final_picks`` per track for the whole team, enforced by
  ``services.set_final``), and a team that marked none is ranked on its best public submission.

``eligible_ids`` is the rule over plain data; ``apply`` reads the track's rows and filters the
candidates ``ranking.track_candidates`` built. Nothing here imports ``leaderboards``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from .models import Extension, FinalPick, Hiding


def is_late(created_at: datetime, track_deadline: datetime,
            extended_to: datetime | None = None) -> bool:
    """An upload after the track's deadline, not covered by the student's extension."""
    if created_at < track_deadline:
        return False
    return extended_to is None or created_at >= extended_to


def eligible_ids(by_split: Mapping[str, Iterable], *, hidden: set[int], late: set[int],
                 finals: Mapping[int, set[int]],
                 teams: Mapping[int, int] | None = None) -> dict[str, set[int]]:
    """The submission ids each split may rank. ``by_split`` maps a split to its candidates
    (objects with ``submission_id``, ``participant_id``, ``is_baseline``, ``accuracy``,
    ``submitted_at``); ``finals`` maps a student's id to their final picks' ids; ``teams`` maps
    a team member's id to their team's id (the team is then the participant)."""
    teams = teams or {}

    def who(user_id: int) -> tuple[str, int]:
        return ("team", teams[user_id]) if user_id in teams else ("student", user_id)

    picked: dict[tuple[str, int], set[int]] = {}
    for user_id, ids in finals.items():
        picked.setdefault(who(user_id), set()).update(ids)
    out: dict[str, set[int]] = {}
    public = [c for c in by_split.get("public", ()) if c.submission_id not in hidden | late]
    best_public: dict[tuple[str, int], tuple] = {}
    for c in public:
        if c.is_baseline:
            continue
        key = (-c.accuracy, c.submitted_at, c.submission_id)
        owner = who(c.participant_id)
        if owner not in best_public or key < best_public[owner][0]:
            best_public[owner] = (key, c.submission_id)
    for split, candidates in by_split.items():
        allowed = set()
        for c in candidates:
            if c.submission_id in hidden or c.submission_id in late:
                continue
            if split == "private" and not c.is_baseline:
                owner = who(c.participant_id)
                picks = picked.get(owner, set()) - hidden - late
                if picks:
                    if c.submission_id not in picks:
                        continue
                elif best_public.get(owner, (None, None))[1] != c.submission_id:
                    continue
            allowed.add(c.submission_id)
        out[split] = allowed
    return out


def track_rules(track) -> dict:
    """The rows the rule needs for one track (three queries): hidden, late and final ids."""
    from submissions.models import Submission

    hidden = set(Hiding.objects.filter(submission__track=track)
                 .values_list("submission_id", flat=True))
    extended = dict(Extension.objects.filter(competition_id=track.competition_id,
                                             deadline__isnull=False)
                    .values_list("user_id", "deadline"))
    closes = track.closes_at
    late = {pk for pk, user_id, created in Submission.objects.filter(
        track=track, created_at__gte=closes, is_baseline=False).values_list(
        "id", "user_id", "created_at") if is_late(created, closes, extended.get(user_id))}
    finals: dict[int, set[int]] = {}
    for pk, user_id in FinalPick.objects.filter(submission__track=track).values_list(
            "submission_id", "submission__user_id"):
        finals.setdefault(user_id, set()).add(pk)
    return {"hidden": hidden, "late": late, "finals": finals}


def apply(track, by_split: dict[str, list],
          teams: Mapping[int, int] | None = None) -> dict[str, list]:
    """``by_split`` (split -> candidates, as ``ranking.track_candidates`` builds it) with only
    the candidates the rules let each split rank; ``teams``: member id -> team id."""
    allowed = eligible_ids(by_split, **track_rules(track), teams=teams)
    return {split: [c for c in candidates if c.submission_id in allowed[split]]
            for split, candidates in by_split.items()}
