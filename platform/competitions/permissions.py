"""Who may do what with a competition, as DRF permission classes (object permissions on a
``Competition``), used by the API's views and the web pages alike. The rules themselves are the
model's (``is_organizer``, ``is_participant``, ``can_view``, ``can_see_private``); this module
names them once so that no view writes its own ``if ...: raise PermissionDenied``.

A web view asks ``allowed(IsOrganizer, request, competition)``; an API view lists the class in
``permission_classes`` and calls ``check_object_permissions``.
"""

from __future__ import annotations

from accounts.models import is_instructor
from django.http import Http404
from rest_framework.permissions import BasePermission

from .models import Competition


class MayView(BasePermission):
    """Public, or the user organizes or takes part in it. A refusal is a 404, never a 403:
    an unlisted competition stays unknown to the others (see ``competition_for``)."""

    def has_object_permission(self, request, view, competition) -> bool:
        return competition.can_view(request.user)


class IsOrganizer(BasePermission):
    message = "Only the competition's organizers can do this."

    def has_object_permission(self, request, view, competition) -> bool:
        return competition.is_organizer(request.user)


class IsParticipant(BasePermission):
    """Takes part in it (or organizes it)."""

    message = "Only the competition's participants can do this."

    def has_object_permission(self, request, view, competition) -> bool:
        return competition.is_participant(request.user) or competition.is_organizer(request.user)


class MayJoin(BasePermission):
    """Anyone may join a public competition; an unlisted one is joined by invitation (its
    organizers add the participants)."""

    message = "This competition is by invitation only."

    def has_object_permission(self, request, view, competition) -> bool:
        return competition.is_public or competition.is_organizer(request.user)


class MaySeePrivate(BasePermission):
    """The private split: for organizers, and for everyone once it is revealed."""

    message = "The private leaderboard is revealed after the deadline."

    def has_object_permission(self, request, view, competition) -> bool:
        return competition.can_see_private(request.user)


class MayCreateCompetitions(BasePermission):
    """Instructors (and superusers) may set up competitions; they organize what they create."""

    message = "Only instructors can create competitions."

    def has_permission(self, request, view) -> bool:
        return is_instructor(request.user)


def allowed(permission: type[BasePermission], request, competition, view=None) -> bool:
    """Whether ``permission`` lets ``request``'s user at ``competition`` (for web views)."""
    return permission().has_object_permission(request, view, competition)


def competition_for(request, slug: str):
    """The competition if the caller may see it; 404 otherwise (unlisted ones stay unknown)."""
    competition = Competition.objects.filter(slug=slug).first()
    if competition is None or not allowed(MayView, request, competition):
        raise Http404("No such competition.")
    return competition
