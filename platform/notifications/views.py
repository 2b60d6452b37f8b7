from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import services


@login_required
@require_POST
def email_preference(request: HttpRequest) -> HttpResponse:
    wanted = request.POST.get("email_results") == "on"
    services.set_wants_email(request.user, wanted)
    messages.success(request, "You will get an e-mail when an upload is scored or rejected."
                     if wanted else "You will get no more score e-mails.")
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return redirect(target)
