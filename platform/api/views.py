"""The REST API. Views check who may see what; ranking comes from ``leaderboards.ranking`` only."""

from __future__ import annotations

from competitions.models import Competition, Track
from competitions.permissions import (
    IsOrganizer,
    MayJoin,
    MaySeePrivate,
    allowed,
    competition_for,
)
from competitions.services import join
from coursework.services import NotAllowed, set_final
from coursework.services import marks as course_marks
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from leaderboards import ranking
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from teams.participants import team_labels

from submissions.models import Submission
from submissions.quotas import QuotaExceeded
from submissions.rescoring import score_versions
from submissions.services import UploadRefused, submit

from .params import MAX_OFFSET, LeaderboardQuery, SubmissionQuery, error_responses, parse
from .serializers import (
    CompetitionSerializer,
    FinalSerializer,
    SubmissionSerializer,
    UploadSerializer,
)
from .spreadsheet import SafeWriter

MAX_ROWS = 1000


@extend_schema(responses={200: CompetitionSerializer(many=True), **error_responses(429)})
class CompetitionList(generics.ListAPIView):
    serializer_class = CompetitionSerializer

    def get_queryset(self):
        return Competition.objects.visible_to(self.request.user).prefetch_related("tracks")


class CompetitionDetail(APIView):
    @extend_schema(responses={200: CompetitionSerializer, **error_responses(404, 429)})
    def get(self, request, slug: str):
        return Response(CompetitionSerializer(competition_for(request, slug)).data)


class JoinCompetition(APIView):
    permission_classes = [IsAuthenticated, MayJoin]

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT,
                                            **error_responses(401, 403, 404, 429)})
    def post(self, request, slug: str):
        competition = competition_for(request, slug)
        self.check_object_permissions(request, competition)
        join(competition, request.user)
        return Response({"competition": competition.slug, "joined": True})


class Leaderboard(APIView):
    @extend_schema(parameters=[LeaderboardQuery], responses={
        200: OpenApiTypes.OBJECT, **error_responses(400, 403, 404, 429)})
    def get(self, request, slug: str):
        competition = competition_for(request, slug)
        query = parse(LeaderboardQuery, request.query_params)
        track = self._track(competition, query.get("track"))
        category, split = query["category"], query["split"]
        if split == "private" and not allowed(MaySeePrivate, request, competition, self):
            raise PermissionDenied(MaySeePrivate.message)
        limit = max(1, min(MAX_ROWS, query["limit"]))
        offset = max(0, min(MAX_OFFSET, query["offset"]))
        try:
            rows = ranking.leaderboard_rows(track, category, split, ranking.ROW_FIELDS,
                                            offset=offset, limit=limit)
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response({
            "competition": competition.slug, "track": track.slug, "task": track.task,
            "category": category, "split": split, "offset": offset, "limit": limit,
            "limits": {"max_size_bytes": track.max_size_bytes,
                       "max_latency_ms": track.max_latency_ms,
                       "accuracy_floor": track.accuracy_floor},
            # Read per request, not cached with the rows: a re-calibration does not rebuild.
            "hardware": ranking.track_hardware(track),
            # More than one key: the board mixes evaluator/protocol versions (re-score due).
            "score_versions": score_versions(track),
            "rows": rows,
        })

    @staticmethod
    def _track(competition: Competition, slug: str | None) -> Track:
        tracks = competition.tracks.all()
        track = tracks.filter(slug=slug).first() if slug else tracks.first()
        if track is None:
            raise NotFound(f"no track {slug!r} in {competition.slug}" if slug else "no tracks")
        return track


class ResultsCsv(APIView):
    permission_classes = [IsAuthenticated, IsOrganizer]
    columns = ["track", "task", "hardware_class", "cpu_model", "cpu_features", "split",
               "category", "rank", "tied", "username", "team", "is_baseline", "submission_id",
               "accuracy",
               "bits_per_char", "latency_ms", "normalized_latency_ms", "normalized_latency_low_ms",
               "normalized_latency_high_ms", "speed_index", "speed_index_low", "speed_index_high",
               "size_bytes", "accuracy_per_mb", "submitted_at"]

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR,
                              **error_responses(401, 403, 404, 429)})
    def get(self, request, slug: str):
        competition = competition_for(request, slug)
        self.check_object_permissions(request, competition)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{competition.slug}-results.csv"'
        writer = SafeWriter(response)
        writer.writerow(self.columns)
        hardware: dict[int, dict] = {}  # per track: one look-up, not one per row
        for entry in ranking.competition_results(competition):
            if entry.track_id not in hardware:
                hardware[entry.track_id] = ranking.track_hardware(entry.track)
            scored_on = hardware[entry.track_id]
            writer.writerow([
                entry.track.slug, entry.track.task, scored_on["name"], scored_on["cpu_model"],
                " ".join(scored_on["cpu_features"]), entry.split, entry.category,
                entry.rank or "", entry.tied, entry.username, entry.team_name, entry.is_baseline,
                entry.submission_id, entry.accuracy, _blank(entry.bits_per_char),
                entry.latency_ms, *(_blank(getattr(entry, field)) for field in (
                    "normalized_latency_ms", "normalized_latency_low_ms",
                    "normalized_latency_high_ms", "speed_index", "speed_index_low",
                    "speed_index_high")),
                entry.size_bytes, entry.accuracy_per_mb, entry.submitted_at.isoformat(),
            ])
        return response


def _blank(value):
    """A CSV cell: empty for a figure that was not measured."""
    return "" if value is None else value


def _serialize(request, submissions, many: bool = False):
    """Submissions as JSON; private-split scores only where the caller may see them."""
    private: dict[int, bool] = {}  # per competition: one check, not one per submission
    items = list(submissions) if many else [submissions]
    # Final, late and hidden marks (coursework): three queries per competition, not per row.
    by_competition: dict[int, list] = {}
    for submission in items:
        by_competition.setdefault(submission.track.competition_id, []).append(submission)
    marks: dict[int, dict] = {}
    teams: dict[int, dict] = {}  # per competition: member id -> (team id, name), one query
    for competition_id, group in by_competition.items():
        marks.update(course_marks(group[0].track.competition, group))
        teams[competition_id] = team_labels(competition_id)

    def data(submission):
        competition = submission.track.competition
        if competition.pk not in private:
            private[competition.pk] = allowed(MaySeePrivate, request, competition)
        return SubmissionSerializer(submission, context={
            "show_private": private[competition.pk], "marks": marks.get(submission.pk),
            "team": teams[competition.pk].get(submission.user_id, (None, None))[1]}).data

    return [data(s) for s in items] if many else data(submissions)


class SubmissionList(APIView):
    permission_classes = [IsAuthenticated]
    throttle_scope = "uploads"

    def get_throttles(self):
        # The upload throttle applies to POST only; listing uses the user rate.
        if self.request.method != "POST":
            self.throttle_scope = None
        return super().get_throttles()

    @extend_schema(parameters=[SubmissionQuery], responses={
        200: SubmissionSerializer(many=True), **error_responses(400, 401, 429)})
    def get(self, request):
        """Your own submissions, newest first."""
        query = parse(SubmissionQuery, request.query_params)
        queryset = (Submission.objects.filter(user=request.user)
                    .select_related("track__competition", "user", "score"))
        if query.get("competition"):
            queryset = queryset.filter(track__competition__slug=query["competition"])
        if query.get("track"):
            queryset = queryset.filter(track__slug=query["track"])
        if query.get("status"):
            queryset = queryset.filter(status=query["status"])
        return Response(_serialize(request, queryset[:MAX_ROWS], many=True))

    @extend_schema(request={"multipart/form-data": UploadSerializer},
                   responses={201: SubmissionSerializer, 200: SubmissionSerializer,
                              **error_responses(400, 401, 403, 404, 413, 429)})
    def post(self, request):
        """Upload a model: stored and sent to its check (201). The same bytes as one of your
        earlier uploads on the track answer 200 with that submission and ``duplicate: true``
        (no upload used)."""
        form = UploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        competition = competition_for(request, form.validated_data["competition"])
        track = competition.tracks.filter(slug=form.validated_data["track"]).first()
        if track is None:
            known = ", ".join(competition.tracks.values_list("slug", flat=True))
            raise ValidationError({"track": f"no such track; this competition has: {known}"})
        upload = form.validated_data["file"]
        try:
            submission = submit(track, request.user, upload.chunks(), label=upload.name or "",
                                as_baseline=form.validated_data["baseline"])
        except UploadRefused as exc:
            return Response({"detail": str(exc), "code": exc.code}, status=exc.status)
        except QuotaExceeded as exc:
            body = {"detail": str(exc), "code": "quota"}
            if exc.retry_at:
                body["retry_at"] = exc.retry_at.isoformat()
            return Response(body, status=status.HTTP_429_TOO_MANY_REQUESTS)
        duplicate = getattr(submission, "duplicate", False)
        submission = Submission.objects.select_related("track__competition", "user").get(
            pk=submission.pk)
        if duplicate:  # the same bytes as an earlier upload: that submission, no upload used
            return Response({**_serialize(request, submission), "duplicate": True},
                            status=status.HTTP_200_OK)
        return Response(_serialize(request, submission), status=status.HTTP_201_CREATED)


class SubmissionDetail(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: SubmissionSerializer, **error_responses(401, 404, 429)})
    def get(self, request, pk: int):
        """One submission: yours, or any in a competition you organize."""
        submission = get_object_or_404(
            Submission.objects.select_related("track__competition", "user", "score"), pk=pk
        )
        if submission.user_id != request.user.id and not (
            allowed(IsOrganizer, request, submission.track.competition, self)
        ):
            raise Http404  # never confirm that someone else's submission exists
        return Response(_serialize(request, submission))


class SubmissionFinal(APIView):
    """Mark one of your scored submissions final (or not) before the deadline; the private
    leaderboard ranks the best of your final ones per track."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=FinalSerializer, responses={
        200: SubmissionSerializer, **error_responses(400, 401, 404, 429)})
    def post(self, request, pk: int):
        form = FinalSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        submission = (Submission.objects.select_related("track__competition", "user", "score")
                      .filter(pk=pk, user=request.user).first())
        if submission is None:
            raise Http404  # never confirm that someone else's submission exists
        try:
            set_final(submission, request.user, form.validated_data["final"])
        except NotAllowed as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(_serialize(request, submission))
