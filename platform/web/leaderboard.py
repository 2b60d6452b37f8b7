"""What the leaderboard page shows: tabs, the chosen board's rows and the Pareto chart's points.

The rows are read from the leaderboard service as stored (it ranks when a score is written);
nothing here sorts or filters scores.
"""

from __future__ import annotations

from competitions.models import Competition
from django.http import Http404
from django.urls import reverse
from django.utils.http import urlencode
from leaderboards import ranking

from evaluator.tasks import get_task

from .chart import Point, build_chart

ROWS_SHOWN = 100
CHART_POINTS = 200
CATEGORY_TITLES = {
    ranking.ACCURACY: "Accuracy", ranking.SPEED: "Speed", ranking.SIZE: "Size",
    ranking.EFFICIENCY: "Efficiency",
}
# The column each category ranks by, and which way is better (for aria-sort and the highlight).
SORTED_BY = {
    ranking.ACCURACY: ("accuracy", "descending"), ranking.SPEED: ("latency", "ascending"),
    ranking.SIZE: ("size", "ascending"), ranking.EFFICIENCY: ("efficiency", "descending"),
}
CATEGORY_HELP = {
    ranking.ACCURACY: "Highest accuracy within the size and latency limits.",
    ranking.SPEED: "Lowest latency, at or above the accuracy floor.",
    ranking.SIZE: "Smallest compressed model, at or above the accuracy floor.",
    ranking.EFFICIENCY: "Highest accuracy per megabyte, at or above the accuracy floor.",
}


def leaderboard_context(request, competition: Competition, params) -> dict:
    tracks = list(competition.tracks.all())
    if not tracks:
        raise Http404("This competition has no tracks yet.")
    track = _chosen_track(tracks, params.get("track"))
    category = params.get("category") or ranking.ACCURACY
    if category not in ranking.CATEGORIES:
        raise Http404(f"No such category; use one of: {', '.join(ranking.CATEGORIES)}.")
    may_see_private = competition.can_see_private(request.user)
    split = params.get("split") or "public"
    private_refused = split == "private" and not may_see_private
    if split not in ranking.SPLITS or private_refused:
        split = "public"
    state = {"track": track.slug, "category": category, "split": split}
    return {
        "competition": competition,
        "tracks": tracks,
        "track": track,
        "task": get_task(track.task),
        "category": category,
        "category_title": CATEGORY_TITLES[category],
        "category_help": CATEGORY_HELP[category],
        "sorted_column": SORTED_BY[category][0],
        "sort_direction": SORTED_BY[category][1],
        "split": split,
        "state": state,
        "may_see_private": may_see_private,
        "private_refused": private_refused,
        "is_organizer": competition.is_organizer(request.user),
        "track_tabs": _tabs(competition, state, "track", [(t.slug, t.slug) for t in tracks]),
        "category_tabs": _tabs(competition, state, "category", list(CATEGORY_TITLES.items())),
        "split_tabs": _tabs(competition, state, "split",
                            [("public", "Public"), ("private", "Private")]
                            if may_see_private else [("public", "Public")]),
        "rows": list(ranking.leaderboard_entries(track, category, split, limit=ROWS_SHOWN)),
        "chart": build_chart(chart_points(track, split)),
        "panel_url": reverse("web:leaderboard-panel", args=[competition.slug]),
    }


def _chosen_track(tracks: list, slug: str | None):
    if not slug:
        return tracks[0]
    for track in tracks:
        if track.slug == slug:
            return track
    raise Http404(f"No track called {slug!r} in this competition.")


def _tabs(competition: Competition, state: dict, param: str, choices: list[tuple[str, str]]):
    page = reverse("web:leaderboard", args=[competition.slug])
    return [{"value": value, "title": title, "selected": state[param] == value,
             "href": f"{page}?{urlencode({**state, param: value})}"}
            for value, title in choices]


def chart_points(track, split: str) -> list[Point]:
    """Each participant's best accurate-enough model plus every point of the Pareto front."""
    best = ranking.leaderboard_entries(track, ranking.ACCURACY, split, limit=CHART_POINTS)
    front = ranking.leaderboard_entries(track, ranking.PARETO, split, limit=CHART_POINTS)
    front_ids = {entry.submission_id for entry in front}
    points: dict[int, Point] = {}
    for entry in [*best, *front]:
        points.setdefault(entry.submission_id, Point(
            submission_id=entry.submission_id, username=entry.username, accuracy=entry.accuracy,
            latency_ms=entry.latency_ms, size_bytes=entry.size_bytes,
            is_baseline=entry.is_baseline, on_front=entry.submission_id in front_ids,
            label=entry.label,
        ))
    return list(points.values())
