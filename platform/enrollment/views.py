"""Pages for joining (link, code, sign-up), the organizer's enrollment page, token rotation."""

from __future__ import annotations

from datetime import timedelta

from competitions.permissions import IsOrganizer, allowed, competition_for
from competitions.services import join
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from . import services
from .forms import CodeForm, RosterForm, SignUpForm
from .throttles import JoinCodeThrottle, SignUpThrottle, wait_in_words

MAX_ROSTER_BYTES = 2_000_000


def _student_page(competition) -> str:
    return reverse("web:student", args=[competition.slug])


def _too_many_codes(request: HttpRequest, wait: timedelta) -> HttpResponse:
    refusal = (f"Too many wrong join codes from your network: try again in {wait_in_words(wait)}, "
               "with the code or link from your instructor.")
    return render(request, "enrollment/code.html", {"form": CodeForm(), "refusal": refusal},
                  status=429)


@require_http_methods(["GET", "POST"])
def enter_code(request: HttpRequest) -> HttpResponse:
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        throttle = JoinCodeThrottle()
        # Refused before the code is looked at: a blocked guesser learns nothing, right or wrong.
        wait = throttle.refusal(request)
        if wait:
            return _too_many_codes(request, wait)
        code = form.cleaned_data["code"].strip()
        if services.competition_for_code(code) is not None:
            return redirect("enrollment:join", code=code)
        throttle.record(request)
        form.add_error("code", "No competition has that code (it may have been changed: ask "
                               "your instructor for the current one).")
    return render(request, "enrollment/code.html", {"form": form}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def join_by_link(request: HttpRequest, code: str) -> HttpResponse:
    throttle = JoinCodeThrottle()
    wait = throttle.refusal(request)
    if wait:
        return _too_many_codes(request, wait)
    competition = services.competition_for_code(code)
    if competition is None:
        throttle.record(request)
        raise Http404("This join link does not work (any more): ask your instructor for the "
                      "current one.")
    if request.user.is_authenticated:
        if request.method == "POST":
            join(competition, request.user)
            messages.success(request, f"You have joined {competition.title}.")
            return redirect(_student_page(competition))
        return render(request, "enrollment/join.html", {"competition": competition, "code": code,
                                                        "joined": competition.is_participant(
                                                            request.user)})
    form = SignUpForm(request.POST or None)
    status = 200
    if request.method == "POST":
        signups = SignUpThrottle()
        wait = signups.refusal(request)
        if wait:
            refusal = (f"Too many sign-ups from your network in a short time: try again in "
                       f"{wait_in_words(wait)}.")
            return render(request, "enrollment/signup.html", {
                "competition": competition, "code": code, "refusal": refusal,
                "form": SignUpForm(initial={"username": request.POST.get("username", ""),
                                            "email": request.POST.get("email", "")})},
                status=429)
        signups.record(request)  # every try counts, a refused one too: a script's as well
    if request.method == "POST" and form.is_valid():
        try:
            user = services.sign_up(competition, form.cleaned_data["username"],
                                    form.cleaned_data["email"], form.cleaned_data["password"])
        except services.EnrollmentRefused as exc:
            form.add_error(None, str(exc))
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.username}: you have joined "
                                      f"{competition.title}.")
            return redirect(_student_page(competition))
    if form.errors:
        status = 400
    return render(request, "enrollment/signup.html",
                  {"competition": competition, "code": code, "form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def manage(request: HttpRequest, slug: str) -> HttpResponse:
    """The organizer's page: the join link (on/off, rotate) and the roster import."""
    competition = competition_for(request, slug)
    if not allowed(IsOrganizer, request, competition):
        raise Http404("No such page.")
    form = RosterForm()
    result = None
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "rotate":
            services.rotate(competition)
            messages.success(request, "A new join link and code: the old ones no longer work.")
            return redirect("enrollment:manage", slug=slug)
        if action in ("enable", "disable"):
            services.set_enabled(competition, action == "enable")
            messages.success(request, "Sign-up by link is " + ("on." if action == "enable"
                                                                 else "off."))
            return redirect("enrollment:manage", slug=slug)
        form = RosterForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["roster"]
            if upload.size > MAX_ROSTER_BYTES:
                form.add_error("roster", "The file is over 2 MB: is it really a class list?")
            else:
                try:
                    text = upload.read().decode("utf-8-sig")
                except UnicodeDecodeError:
                    text = None
                    form.add_error("roster", "The file is not UTF-8 text: export it as CSV.")
                if text is not None:
                    try:
                        result = services.import_roster(
                            competition, text, base_url=request.build_absolute_uri("/"),
                            send=form.cleaned_data["send_email"])
                    except services.EnrollmentRefused as exc:
                        form.add_error("roster", str(exc))
        if form.errors:
            status = 400
    link = services.join_link(competition)
    return render(request, "enrollment/manage.html", {
        "competition": competition, "link": link, "form": form, "result": result,
        "join_url": request.build_absolute_uri(reverse("enrollment:join", args=[link.code])),
        "participants": competition.participations.select_related("user").order_by(
            "user__username"),
    }, status=status)


@login_required
@require_POST
def rotate_token(request: HttpRequest) -> HttpResponse:
    services.rotate_token(request.user)
    messages.success(request, "Your API token was replaced: the old one no longer works.")
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = "/"
    return redirect(target)
