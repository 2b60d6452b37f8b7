"""Creating competitions and joining them."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from evaluator.tasks import get_task

from .models import Competition, Participation, Track

# Accuracy a model needs before its speed, size or efficiency counts (a constant model is not "fast").
DEFAULT_ACCURACY_FLOORS = {"mnist": 0.90, "cifar10": 0.40, "tinygpt": 0.30}
DEFAULT_DURATION = timedelta(days=30)


def check_limits(**limits) -> None:
    """Raise ``ValueError`` in words for a track limit no model could meet or a student could
    use: the one check of the command line and the organizer's pages."""
    if "max_size_bytes" in limits and limits["max_size_bytes"] is not None \
            and limits["max_size_bytes"] < 1:
        raise ValueError("the size limit must be at least 1 byte")
    if "max_latency_ms" in limits and limits["max_latency_ms"] is not None \
            and not limits["max_latency_ms"] > 0:
        raise ValueError("the latency limit must be more than 0 ms")
    floor = limits.get("accuracy_floor")
    if floor is not None and not 0.0 <= floor <= 1.0:
        raise ValueError("the accuracy floor is a fraction between 0 and 1 (0.9 for 90%)")
    for name in ("daily_limit", "total_limit"):
        if name in limits and limits[name] is not None and limits[name] < 1:
            raise ValueError(f"{name.replace('_', ' ')} must be at least 1 upload")
    daily, total = limits.get("daily_limit"), limits.get("total_limit")
    if daily is not None and total is not None and total < daily:
        raise ValueError("the total limit cannot be below the daily limit")


def check_dates(start: datetime, deadline: datetime) -> None:
    if deadline <= start:
        raise ValueError("the deadline must come after the start")


@transaction.atomic
def create_competition(
    slug: str, title: str, tasks: list[str], *, description: str = "",
    start: datetime | None = None, deadline: datetime | None = None,
    visibility: str = Competition.Visibility.PUBLIC, organizers=(), **limits,
) -> Competition:
    """Create a competition with one track per task; ``limits`` are Track fields (all tracks)."""
    for task in tasks:
        get_task(task)  # a clear error for an unknown task name
    start = start or timezone.now()
    deadline = deadline or start + DEFAULT_DURATION
    check_dates(start, deadline)
    check_limits(**limits)
    competition = Competition.objects.create(
        slug=slug, title=title, description=description, start=start, deadline=deadline,
        visibility=visibility,
    )
    competition.organizers.add(*organizers)
    for task in tasks:
        track_limits = {"accuracy_floor": DEFAULT_ACCURACY_FLOORS.get(task, 0.0), **limits}
        Track.objects.create(competition=competition, slug=task, task=task, **track_limits)
    return competition


def join(competition: Competition, user) -> Participation:
    """Make ``user`` a participant (idempotent, safe when two requests race)."""
    try:
        with transaction.atomic():
            participation, _ = Participation.objects.get_or_create(
                competition=competition, user=user
            )
    except IntegrityError:
        participation = Participation.objects.get(competition=competition, user=user)
    return participation
