"""Query parameters of the API, checked before any reaches the database.

Each endpoint's parameters are a serializer: DRF's text fields refuse NUL bytes (PostgreSQL
cannot store or compare them), choices and numbers are checked, and drf-spectacular documents
them from the same class. A bad value is a 400 whose ``detail`` says what was wrong, with the
field-by-field errors beside it.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from leaderboards import ranking
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from submissions.models import Status

# Far above any real page; keeps OFFSET within what PostgreSQL takes (a bigint).
MAX_OFFSET = 10**9


def _choice(name: str, choices, default: str | None = None) -> serializers.ChoiceField:
    listed = ", ".join(choices)
    extra = {"default": default} if default is not None else {"required": False,
                                                               "allow_blank": True}
    return serializers.ChoiceField(
        choices=list(choices), **extra,
        error_messages={"invalid_choice": f'unknown {name} "{{input}}"; use one of: {listed}'})


def _whole_number(default: int, help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        default=default, help_text=help_text,
        error_messages={"invalid": "must be a whole number",
                        "max_string_length": "must be a whole number of at most 1000 digits"})


class LeaderboardQuery(serializers.Serializer):
    track = serializers.SlugField(required=False, allow_blank=True,
                                  help_text="track slug (default: the first track)")
    category = _choice("category", [*ranking.CATEGORIES, ranking.PARETO], ranking.ACCURACY)
    split = _choice("split", ranking.SPLITS, "public")
    # Out-of-range numbers are clamped rather than refused (as they always were).
    limit = _whole_number(100, "rows to return (1 to 1000)")
    offset = _whole_number(0, "rows to skip")


class SubmissionQuery(serializers.Serializer):
    competition = serializers.SlugField(required=False, allow_blank=True,
                                        help_text="only this competition's submissions")
    track = serializers.SlugField(required=False, allow_blank=True,
                                  help_text="only this track's submissions")
    status = _choice("status", Status.values)


def parse(query: type[serializers.Serializer], params) -> dict:
    """``params`` checked by ``query``: its values, or a 400 with the reasons."""
    form = query(data=params)
    if form.is_valid():
        return form.validated_data
    reasons = "; ".join(f"{field}: {' '.join(str(e) for e in errors)}"
                        for field, errors in form.errors.items())
    raise ValidationError({"detail": reasons, **form.errors})


_ANSWERS = {
    400: "A parameter, a field or the address is invalid (a NUL byte anywhere is refused): "
         "`detail` says which and why.",
    401: "No or a bad API token (`Authorization: Token <key>`).",
    403: "Signed in, but not allowed (for example not an organizer, or the private split "
         "before the deadline).",
    404: "No such object, or one the caller may not see (unlisted competitions stay unknown).",
    413: "The upload is larger than the platform's limit (ARENA_MAX_UPLOAD_BYTES).",
    429: "Too many requests or uploads: `detail` says when to try again.",
}


# One component for every error answer (a JSON object with a ``detail`` in words).
_ERROR = inline_serializer("Error", {"detail": serializers.CharField()})


def error_responses(*codes: int) -> dict:
    """The error answers of an operation, for ``extend_schema(responses=...)``. Every operation
    can answer 400: a NUL byte anywhere in the address is refused before any view runs
    (``web.middleware.RejectNulBytes``)."""
    return {code: OpenApiResponse(_ERROR, description=_ANSWERS[code])
            for code in sorted({400, *codes})}
