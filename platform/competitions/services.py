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
    if deadline <= start:
        raise ValueError("the deadline must come after the start")
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
