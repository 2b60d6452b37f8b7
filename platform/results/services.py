"""After the deadline: the winners of each category on the private split, each student's public
to private rank change, the baselines, and a grade file an LMS imports (one row per student).
Everything is read from the stored leaderboard rows (``leaderboards.ranking``): nothing is ranked
here, so the results always agree with the boards."""

from __future__ import annotations

from dataclasses import dataclass, field

from leaderboards import ranking

# The grade file's columns an instructor may choose, per track (in this order).
GRADE_COLUMNS = {
    "best_accuracy": "best accuracy (private)",
    "accuracy_rank": "accuracy rank",
    "speed_rank": "speed rank",
    "size_rank": "size rank",
    "efficiency_rank": "efficiency rank",
    "public_accuracy_rank": "public accuracy rank",
    "beat_baseline": "beat the baseline",
}
DEFAULT_GRADE_COLUMNS = ("best_accuracy", "accuracy_rank", "beat_baseline")
# The first columns Canvas's and Moodle's grade imports match students on.
IDENTITY_HEADER = ["Student", "SIS Login ID", "Email address"]


@dataclass
class TrackResults:
    track: object
    winners: dict[str, list] = field(default_factory=dict)  # category -> rank-1 entries
    baselines: list = field(default_factory=list)  # private accuracy entries of baselines
    changes: list[dict] = field(default_factory=list)  # per student, best private first


def _by(entries, **match):
    return [e for e in entries if all(getattr(e, k) == v for k, v in match.items())]


def _who(entry) -> tuple[str, int]:
    """A stored row's participant: its team, else its student."""
    return ("team", entry.team_id) if entry.team_id else ("student", entry.user_id)


def track_results(track, entries) -> TrackResults:
    """``entries``: the track's stored rows (every split and category but the Pareto front)."""
    out = TrackResults(track)
    for category in ranking.CATEGORIES:
        rows = _by(entries, split="private", category=category)
        out.winners[category] = [e for e in rows if e.rank == 1]
    out.baselines = [e for e in _by(entries, split="private", category=ranking.ACCURACY)
                     if e.is_baseline]
    # Keyed by participant: a team's public and private rows may be different members'.
    public = {_who(e): e.rank for e in _by(entries, split="public", category=ranking.ACCURACY)
              if not e.is_baseline}
    for e in _by(entries, split="private", category=ranking.ACCURACY):
        if e.is_baseline:
            continue
        before = public.get(_who(e))
        out.changes.append({"username": e.username, "team_name": e.team_name,
                            "public_rank": before,
                            "private_rank": e.rank, "accuracy": e.accuracy,
                            "moved": None if before is None else before - e.rank})
    return out


def competition_results(competition) -> list[TrackResults]:
    entries = list(ranking.competition_results(competition))
    return [track_results(track, [e for e in entries if e.track_id == track.pk])
            for track in competition.tracks.all()]


def grade_table(competition, columns: list[str]) -> tuple[list[str], list[list]]:
    """(header, rows): one row per student (usernames in order), the chosen columns per
    track. Blank where a student has no ranked submission; ``beat the baseline`` is ``yes``/
    ``no`` against the best baseline's private accuracy (blank without a baseline). A team
    member gets their team's result (whichever member's submission it is)."""
    from teams.participants import participant_key, team_labels

    unknown = [c for c in columns if c not in GRADE_COLUMNS]
    if unknown:
        raise ValueError(f"unknown column(s): {', '.join(unknown)}; choose from: "
                         f"{', '.join(GRADE_COLUMNS)}")
    columns = [c for c in GRADE_COLUMNS if c in columns] or list(DEFAULT_GRADE_COLUMNS)
    tracks = list(competition.tracks.all())
    entries = list(ranking.competition_results(competition))
    header = list(IDENTITY_HEADER)
    for track in tracks:
        header += [f"{track.slug} {GRADE_COLUMNS[c]}" for c in columns]
    cells: dict[tuple[int, int], dict] = {}
    baseline_best: dict[int, float] = {}
    for e in entries:
        if e.is_baseline:
            if e.split == "private" and e.category == ranking.ACCURACY:
                baseline_best[e.track_id] = max(baseline_best.get(e.track_id, 0.0), e.accuracy)
            continue
        cell = cells.setdefault((_who(e), e.track_id), {})
        if e.split == "public":
            if e.category == ranking.ACCURACY:
                cell["public_accuracy_rank"] = e.rank
            continue
        cell[f"{e.category}_rank"] = e.rank
        if e.category == ranking.ACCURACY:
            cell["best_accuracy"] = round(e.accuracy, 6)
    rows = []
    labels = team_labels(competition.pk)
    participants = (competition.participations.select_related("user")
                    .order_by("user__username"))
    for participation in participants:
        user = participation.user
        name = f"{user.last_name}, {user.first_name}" if user.last_name else user.username
        row = [name, user.username, user.email]
        who = participant_key(user.pk, labels)
        for track in tracks:
            cell = cells.get((who, track.pk), {})
            for column in columns:
                if column == "beat_baseline":
                    best = cell.get("best_accuracy")
                    base = baseline_best.get(track.pk)
                    row.append("" if best is None or base is None else
                               ("yes" if best > base else "no"))
                else:
                    value = cell.get(column)
                    row.append("" if value is None else value)
        rows.append(row)
    return header, rows
