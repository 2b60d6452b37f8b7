"""The organizer's view of the flags: a page and an API endpoint, both 404 to anyone but the
competition's organizers (the flags name students)."""

from __future__ import annotations

from api.params import error_responses
from competitions.permissions import IsOrganizer, allowed, competition_for
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Flag
from .services import flags_for


def _organized(request: HttpRequest, slug: str):
    competition = competition_for(request, slug)
    if not allowed(IsOrganizer, request, competition):
        raise Http404("No such page.")
    return competition


@login_required
def flags_page(request: HttpRequest, slug: str) -> HttpResponse:
    competition = _organized(request, slug)
    return render(request, "integrity/flags.html", {
        "competition": competition, "flags": flags_for(competition)[:500],
    })


class SubmissionRef(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.CharField(source="user.username")
    track = serializers.CharField(source="track.slug")
    label = serializers.CharField()
    sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()


class FlagSerializer(serializers.ModelSerializer):
    submission = SubmissionRef()
    other = SubmissionRef(allow_null=True)

    class Meta:
        model = Flag
        fields = ("id", "kind", "submission", "other", "reason", "details", "created_at")


class FlagList(serializers.Serializer):
    competition = serializers.CharField()
    flags = FlagSerializer(many=True)


class CompetitionFlags(APIView):
    """The integrity flags of a competition (organizers only; others get a 404)."""

    permission_classes = [IsAuthenticated]
    serializer_class = FlagSerializer

    @extend_schema(responses={200: FlagList, **error_responses(401, 404, 429)})
    def get(self, request, slug: str) -> Response:
        competition = _organized(request, slug)
        flags = flags_for(competition)[:500]
        return Response({"competition": competition.slug,
                         "flags": FlagSerializer(flags, many=True).data})
