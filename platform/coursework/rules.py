"""Per-student upload rules the submissions service asks before it takes an upload: the
student's own deadline (an extension) and extra uploads, and whether late uploads are taken.
Imports no ``submissions`` module, so ``submissions.services`` may import it."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from .models import Extension, Policy


def policy(competition) -> Policy:
    """The competition's course policy (the defaults, unsaved, when it has none)."""
    return Policy.objects.filter(competition=competition).first() or Policy(competition=competition)


def extension(competition, user) -> Extension | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Extension.objects.filter(competition=competition, user=user).first()


def upload_window(track, user, now: datetime | None = None) -> str:
    """``open`` (on time), ``extended`` (after the deadline, before the student's own),
    ``late`` (after both, and the competition takes late uploads), ``not_open`` or ``closed``."""
    now = now or timezone.now()
    if now < track.opens_at:
        return "not_open"
    if now < track.closes_at:
        return "open"
    granted = extension(track.competition, user)
    if granted is not None and granted.deadline is not None and now < granted.deadline:
        return "extended"
    return "late" if policy(track.competition).accept_late else "closed"


def extra_uploads(track, user) -> int:
    """Uploads the student may make on top of the track's daily and total limits."""
    granted = extension(track.competition, user)
    return granted.extra_uploads if granted is not None else 0
