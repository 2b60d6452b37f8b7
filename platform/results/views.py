"""The results page (after the deadline; organizers any time) and the grade CSV (organizers)."""

from __future__ import annotations

from api.spreadsheet import SafeWriter
from competitions.permissions import IsOrganizer, MaySeePrivate, allowed, competition_for
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from leaderboards.rules import CATEGORIES, CATEGORY_LABELS

from .services import DEFAULT_GRADE_COLUMNS, GRADE_COLUMNS, competition_results, grade_table


@require_GET
def results(request: HttpRequest, slug: str) -> HttpResponse:
    competition = competition_for(request, slug)
    revealed = allowed(MaySeePrivate, request, competition)
    return render(request, "results/results.html", {
        "competition": competition, "revealed": revealed,
        "tracks": competition_results(competition) if revealed else [],
        "categories": [(c, CATEGORY_LABELS[c]) for c in CATEGORIES],
        "is_organizer": allowed(IsOrganizer, request, competition),
        "grade_columns": list(GRADE_COLUMNS.items()),
        "default_columns": DEFAULT_GRADE_COLUMNS,
    })


@login_required
@require_GET
def grades_csv(request: HttpRequest, slug: str) -> HttpResponse:
    competition = competition_for(request, slug)
    if not allowed(IsOrganizer, request, competition):
        raise Http404("No such page.")
    try:
        header, rows = grade_table(competition, request.GET.getlist("columns"))
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{competition.slug}-grades.csv"'
    writer = SafeWriter(response)  # no cell is ever run as a formula
    writer.writerow(header)
    writer.writerows(rows)
    return response

