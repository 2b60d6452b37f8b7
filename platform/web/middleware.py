"""A guard in front of every view (admin included): a NUL byte in the path or in a query
parameter's name or value is a 400 that names the parameter, before anything can hand it to
PostgreSQL, which refuses NUL in text (a 500 otherwise, for example in admin's list filters).
The views check their own parameters further (choices, numbers) with reasons of their own."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from .errors import wants_json

NUL_REFUSED = "Null characters are not allowed."


def nul_parameter(request: HttpRequest) -> str | None:
    """The name of the first part of the request's address holding a NUL byte, or None."""
    if "\x00" in request.path:
        return "path"
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return name.replace("\x00", "\\x00")
    return None


class RejectNulBytes:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = nul_parameter(request)
        if name is None:
            return self.get_response(request)
        reason = f"{name}: {NUL_REFUSED}"
        if wants_json(request):
            return JsonResponse({"detail": reason, name: [NUL_REFUSED], "ok": False,
                                 "message": reason}, status=400)
        return render(request, "400.html", {"reason": reason}, status=400)
