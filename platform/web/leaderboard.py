"""What the leaderboard page shows: tabs, the chosen board's rows and the Pareto chart's points.

The rows are read from the leaderboard service as stored (it ranks when a score is written);
nothing here sorts or filters scores.
"""

from __future__ import annotations

from competitions.models import Competition
from competitions.permissions import IsOrganizer, MaySeePrivate, allowed
from django.core.exceptions import BadRequest
from django.http import Http404
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode
from leaderboards import ranking
from leaderboards.models import LeaderboardEntry
from teams.participants import participant

from evaluator.tasks import get_task

from .chart import Point, build_chart, build_history
from .forms import BoardQuery
from .templatetags.arena_format import bits, megabytes, milliseconds, percent

ROWS_SHOWN = 100
CHART_POINTS = 100  # the most accurate participants' bests, plus the front (up to as many again)
# The rendered table and chart are kept this long: the page of every viewer polls them, and a
# board only changes when a score is written. Viewers never share anything else (the split a
# viewer may see is decided before the cache is asked).
PANEL_CACHE_SECONDS = 5
REFRESH_SECONDS = 10  # how often an open page fetches its board again (paused while hidden)
CATEGORY_TITLES = {
    ranking.ACCURACY: "Accuracy", ranking.SPEED: "Speed", ranking.SIZE: "Size",
    ranking.EFFICIENCY: "Efficiency",
}
# The column each category ranks by, and which way is better (for aria-sort and the highlight).
SORTED_BY = {
    ranking.ACCURACY: ("accuracy", "descending"), ranking.SPEED: ("normalized", "ascending"),
    ranking.SIZE: ("size", "ascending"), ranking.EFFICIENCY: ("efficiency", "descending"),
}
CATEGORY_HELP = {
    ranking.ACCURACY: "Highest accuracy within the size and latency limits.",
    ranking.SPEED: "Fastest against the reference model timed in the same run (the speed index, "
                   "shown as normalized latency), at or above the accuracy floor. Rows whose 95% "
                   "intervals overlap are tied and share a rank.",
    ranking.SIZE: "Smallest compressed model, at or above the accuracy floor.",
    ranking.EFFICIENCY: "Highest accuracy per megabyte, at or above the accuracy floor.",
}


def leaderboard_context(request, competition: Competition, params) -> dict:
    query = BoardQuery(params)
    if not query.is_valid():
        raise BadRequest(f"Bad parameters: {query.reasons()}")
    params = query.cleaned_data
    tracks = list(competition.tracks.all())
    if not tracks:
        raise Http404("This competition has no tracks yet.")
    track = _chosen_track(tracks, params.get("track"))
    category = params.get("category") or ranking.ACCURACY
    if category not in ranking.CATEGORIES:
        raise Http404(f"No such category; use one of: {', '.join(ranking.CATEGORIES)}.")
    may_see_private = allowed(MaySeePrivate, request, competition)
    split = params.get("split") or "public"
    private_refused = split == "private" and not may_see_private
    if split not in ranking.SPLITS or private_refused:
        split = "public"
    page = _page_number(params.get("page"))
    state = {"track": track.slug, "category": category, "split": split, "page": page}
    you = standing(track, category, split, request.user)
    if you and you.get("page"):
        you["href"] = f"{_page_href(competition, state, you['page'])}#row-{you['submission_id']}"
        you["on_this_page"] = you["page"] == page
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
        "is_organizer": allowed(IsOrganizer, request, competition),
        "track_tabs": _tabs(competition, state, "track", [(t.slug, t.slug) for t in tracks]),
        "category_tabs": _tabs(competition, state, "category", list(CATEGORY_TITLES.items())),
        "split_tabs": _tabs(competition, state, "split",
                            [("public", "Public"), ("private", "Private")]
                            if may_see_private else [("public", "Public")]),
        "panel_url": reverse("web:leaderboard-panel", args=[competition.slug]),
        "refresh_seconds": REFRESH_SECONDS,
        "you": you,
        "results_url": "" if competition.is_open() else results_url(competition),
        "page": page,
        "first_row": (page - 1) * ROWS_SHOWN + 1,
        "page_links": {"previous": _page_href(competition, state, page - 1) if page > 1 else "",
                       "next": _page_href(competition, state, page + 1)},
        # The version makes a rebuilt board's panel unreachable at once (the rows changed); the
        # class name, a track moved to another class. A re-calibration waits out the TTL.
        # The viewer's own row is highlighted in the panel: viewers with a row on this board each
        # get their own entry, everyone else shares one.
        "panel_cache_key": (f"web:panel:{track.pk}:{track.leaderboard_version}:"
                            f"{track.hardware_class}:{category}:{split}:{page}:"
                            f"{_viewer_key(you)}"),
    }


def panel_data(context: dict) -> dict:
    """The rows and chart of the board ``context`` names (only when the cache has no panel)."""
    track, category, split = context["track"], context["category"], context["split"]
    offset = (context["page"] - 1) * ROWS_SHOWN
    # One row more than shown says whether there is a next page, without counting them all.
    rows = ranking.leaderboard_rows(track, category, split, ranking.ROW_FIELDS, offset=offset,
                                    limit=ROWS_SHOWN + 1)
    return {"rows": rows[:ROWS_SHOWN], "has_next_page": len(rows) > ROWS_SHOWN,
            "last_row": offset + min(len(rows), ROWS_SHOWN),
            "any_tied": any(row["tied"] for row in rows[:ROWS_SHOWN]),
            "hardware": ranking.track_hardware(track),
            "chart": build_chart(chart_points(track, split), task=context["task"]),
            "history": build_history(top_history(track, split, context["task"]),
                                     task=context["task"])}


def _page_number(text: str | None) -> int:
    try:
        return max(1, min(int(text or 1), 10_000))
    except ValueError:
        raise Http404("The page must be a whole number.") from None


def _page_href(competition: Competition, state: dict, page: int) -> str:
    base = reverse("web:leaderboard", args=[competition.slug])
    return f"{base}?{urlencode({**state, 'page': page})}"


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
             "href": f"{page}?{urlencode({**state, param: value, 'page': 1})}"}
            for value, title in choices]


def chart_points(track, split: str) -> list[Point]:
    """Each participant's best accurate-enough model plus every point of the Pareto front.

    Latency is the one the front is computed on: normalized when the scorecard has it.
    """
    fields = ("submission_id", "username", "accuracy", "bits_per_char", "latency_ms",
              "normalized_latency_ms", "size_bytes", "is_baseline", "label")
    best = ranking.leaderboard_entries(track, ranking.ACCURACY, split, limit=CHART_POINTS)
    front = list(ranking.leaderboard_entries(track, ranking.PARETO, split, limit=CHART_POINTS)
                 .values(*fields))
    front_ids = {entry["submission_id"] for entry in front}
    points: dict[int, Point] = {}
    for entry in [*best.values(*fields), *front]:
        if entry["submission_id"] not in points:
            normalized = entry.pop("normalized_latency_ms")
            if normalized is not None:
                entry["latency_ms"] = normalized
            points[entry["submission_id"]] = Point(
                **entry, on_front=entry["submission_id"] in front_ids,
                title=point_title(entry, entry["submission_id"] in front_ids))
    return list(points.values())


def point_title(entry: dict, on_front: bool) -> str:
    """The tooltip and accessible name of one chart point."""
    who = entry["username"] + (f" (baseline {entry['label']})" if entry["is_baseline"] else "")
    quality = (f"{bits(entry['bits_per_char'])} bits/char"
               if entry.get("bits_per_char") is not None else percent(entry["accuracy"]))
    facts = f"{quality}, {milliseconds(entry['latency_ms'])}, {megabytes(entry['size_bytes'])}"
    return f"{who}: {facts}" + (", on the Pareto front" if on_front else "")


def _viewer_key(you: dict | None) -> str:
    """The part of the panel's cache key that depends on the viewer."""
    if you is None:
        return "visitor"
    return str(you["submission_id"]) if you.get("rank") else "unranked"


def standing(track, category: str, split: str, user,
             members: tuple[int, ...] | None = None) -> dict | None:
    """Where ``user`` stands on one board: ``rank`` (None: no ranked row), ``tied``, ``of`` (the
    ranked participants), the row's ``submission_id`` and the ``page`` it is on. None for a
    visitor who is not signed in. Two indexed queries on the stored rows."""
    if not getattr(user, "is_authenticated", False):
        return None
    rows = LeaderboardEntry.objects.filter(track=track, split=split, category=category)
    of = rows.filter(is_baseline=False).count()
    # A team's row may be another member's submission (``teams.participants``).
    if members is None:
        members = participant(track.competition_id, user.pk).user_ids
    mine = rows.filter(user_id__in=members, is_baseline=False).order_by("position").first()
    if mine is None:
        return {"rank": None, "of": of, "category": category}
    index = rows.filter(position__lt=mine.position).count()  # baselines sit among the rows
    return {"rank": mine.rank, "tied": mine.tied, "of": of, "category": category,
            "submission_id": mine.submission_id, "page": index // ROWS_SHOWN + 1}


def standings(track, user, splits: tuple[str, ...] = ("public",)) -> list[dict]:
    """``standing`` in every category of ``track``, for the student's own page."""
    members = (participant(track.competition_id, user.pk).user_ids
               if getattr(user, "is_authenticated", False) else None)
    return [{"split": split, "category": category, "title": CATEGORY_TITLES[category],
             **(standing(track, category, split, user, members) or {"rank": None, "of": 0})}
            for split in splits for category in ranking.CATEGORIES]


TOP_K = 3  # lines on the leaderboard's chart over time


def top_history(track, split: str, task) -> list[dict]:
    """The best score of the board over time, and of each of the current top ``TOP_K``
    participants: ``{"name", "points": [(time, value), ...]}``, steps at each improvement.

    Built from the scores themselves (the stored rows keep only the current best): every scored,
    within-limit submission of the track, oldest first. ``value`` is accuracy, or bits per
    character on a language model track (lower is better)."""
    from submissions.models import Status, Submission

    language = task.is_language_model
    field = f"score__{split}_bits_per_char" if language else f"score__{split}_accuracy"
    scores = (Submission.objects.filter(track=track, status=Status.SCORED, is_baseline=False)
              .exclude(**{f"{field}__isnull": True})
              .order_by("created_at", "id")
              .values_list("user__username", "created_at", field)[:5000])
    top = [row["username"] for row in ranking.leaderboard_rows(
        track, ranking.ACCURACY, split, ("username", "is_baseline"), limit=TOP_K + 10)
        if not row["is_baseline"]][:TOP_K]

    def better(a: float, b: float | None) -> bool:
        return b is None or (a < b if language else a > b)

    best: dict[str, float] = {}
    lines = {"best": [], **{name: [] for name in top}}
    overall = None
    for username, when, value in scores:
        if better(value, overall):
            overall = value
            lines["best"].append((when, value))
        if username in lines and better(value, best.get(username)):
            best[username] = value
            lines[username].append((when, value))
    return [{"name": "track best" if name == "best" else name, "points": points,
             "is_best": name == "best"} for name, points in lines.items()]


def my_history(track, user, task) -> list[dict]:
    """The student's own scored submissions on ``track`` over time (public split), as one line
    of ``top_history``'s shape, next to the track's best line."""
    from submissions.models import Status, Submission

    field = "score__public_bits_per_char" if task.is_language_model else "score__public_accuracy"
    mine = (Submission.objects.filter(track=track, user=user, status__in=[
                Status.SCORED, Status.OVER_LIMIT])
            .exclude(**{f"{field}__isnull": True}).order_by("created_at", "id")
            .values_list("created_at", field)[:500])
    best = next(line for line in top_history(track, "public", task) if line["is_best"])
    return [best, {"name": "your submissions", "points": list(mine), "is_best": False,
                   "is_mine": True}]


def results_url(competition) -> str:
    """The results and winners page (``results:results``), or "" where it is not installed."""
    try:
        return reverse("results:results", args=[competition.slug])
    except NoReverseMatch:
        return ""
