"""Error pages that answer in the client's language: JSON under /api/ and to a client that asks
for JSON (the student page's upload script), the site's HTML page otherwise. Installed as the
root URLconf's ``handler400`` and ``handler404``; they are used whenever DEBUG is off."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.views.defaults import page_not_found


def wants_json(request: HttpRequest) -> bool:
    return (request.path.startswith("/api/")
            or "application/json" in request.headers.get("Accept", ""))


def reason_for(exception: Exception | None) -> str:
    """What went wrong, in words a student can act on."""
    if isinstance(exception, MultiPartParserError):
        if "header size" in str(exception):
            return ("The upload could not be read: the file name is too long (Django reads at "
                    "most 1024 bytes of each part's headers). Rename the file and try again.")
        return f"The upload could not be read: {exception}"
    text = str(exception or "")
    return text if text and not text.startswith("<") else "The request could not be understood."


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    reason = reason_for(exception)
    if wants_json(request):
        # Both shapes the clients read: the API's ``detail``, the page script's ``message``.
        return JsonResponse({"detail": reason, "ok": False, "message": reason}, status=400)
    return render(request, "400.html", {"reason": reason}, status=400)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"No API endpoint at {request.path}; the list is at "
                                       "/api/ (documentation at /api/docs/)."}, status=404)
    return page_not_found(request, exception)
