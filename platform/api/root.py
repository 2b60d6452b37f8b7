"""``/api/``: where the API starts, linking its documentation (Swagger UI, Redoc, the OpenAPI
schema) and its main endpoints. The documentation pages are drf-spectacular's, with their scripts
served from our own static files (drf-spectacular-sidecar), so they work on a server with no
internet."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView


class ApiRoot(APIView):
    """The API's documentation and its main endpoints."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        def link(name: str) -> str:
            return reverse(f"api:{name}", request=request)

        return Response({
            "documentation": {"swagger_ui": link("docs"), "redoc": link("redoc"),
                              "openapi_schema": link("schema")},
            "competitions": link("competition-list"),
            "submissions": link("submission-list"),
            "leaderboard": reverse("api:competition-list", request=request)
            + "<slug>/leaderboard/?track=<track>&category=accuracy",
        })
