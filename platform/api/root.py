"""``/api/``: where the API starts, linking its documentation (Swagger UI, Redoc, the OpenAPI
schema) and its main endpoints. The documentation pages are drf-spectacular's, with their scripts
served from our own static files (drf-spectacular-sidecar), so they work on a server with no
internet."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView
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


class RedocView(SpectacularRedocView):
    """drf-spectacular's Redoc page, self-contained: our template drops its web fonts, and the
    policy below keeps Redoc's "API docs by Redocly" logo (an image on its CDN, requested
    unconditionally) from leaving the server. Redoc hides the image when it fails to load."""

    template_name = "api/redoc.html"

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = "img-src 'self' data: blob:; font-src 'self' data:"
        return response
