"""Competitions, their tracks (a task plus limits, SPEC §4) and who takes part."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from evaluator.tasks import TASKS

from .querysets import CompetitionQuerySet

# SPEC §4 defaults. A megabyte is 10^6 bytes everywhere (size limit and accuracy per MB).
DEFAULT_MAX_SIZE_BYTES = 10_000_000
DEFAULT_MAX_LATENCY_MS = 100.0
DEFAULT_DAILY_LIMIT = 5
DEFAULT_TOTAL_LIMIT = 100
DEFAULT_REJECTED_DAILY_LIMIT = 20
TASK_CHOICES = [(name, task.title) for name, task in TASKS.items()]


def validate_hidden_set_name(name: str) -> None:
    from django.core.exceptions import ValidationError

    from evaluator.datasets import check_hidden_set_name

    try:
        check_hidden_set_name(name)
    except ValueError as error:
        raise ValidationError(str(error)) from None


class Competition(models.Model):
    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public (listed, anyone may join)"
        UNLISTED = "unlisted", "Unlisted (participants and organizers only)"

    slug = models.SlugField(unique=True, max_length=64)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    organizers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="organized_competitions", blank=True
    )
    start = models.DateTimeField(default=timezone.now)
    deadline = models.DateTimeField()
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    objects = CompetitionQuerySet.as_manager()
    reveal_private_after_deadline = models.BooleanField(
        default=True, help_text="Show the private split's leaderboard to everyone after the deadline."
    )
    # Teams (issue 12, ``platform/teams``): off by default; when on, a team is one participant
    # (one leaderboard row, one shared quota) of at most ``team_size_limit`` students.
    teams_enabled = models.BooleanField(
        default=False, help_text="Let students form teams: a team has one leaderboard row and "
                                 "shares the upload quota.")
    team_size_limit = models.PositiveSmallIntegerField(
        default=3, help_text="The most students in one team (2 or more).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-start", "slug"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_public(self) -> bool:
        return self.visibility == self.Visibility.PUBLIC

    def is_open(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.start <= now < self.deadline

    def private_revealed(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.reveal_private_after_deadline and now >= self.deadline

    def is_organizer(self, user) -> bool:
        if not user.is_authenticated:
            return False
        return user.is_superuser or self.organizers.filter(pk=user.pk).exists()

    def is_participant(self, user) -> bool:
        if not user.is_authenticated:
            return False
        return self.participations.filter(user=user).exists()

    def can_view(self, user) -> bool:
        """Public competitions are visible to anyone; unlisted ones to their people only."""
        return self.is_public or self.is_organizer(user) or self.is_participant(user)

    def can_see_private(self, user, now: datetime | None = None) -> bool:
        return self.private_revealed(now) or self.is_organizer(user)


class Track(models.Model):
    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="tracks")
    slug = models.SlugField(max_length=64, help_text="Usually the task name.")
    task = models.CharField(max_length=32, choices=TASK_CHOICES)
    max_size_bytes = models.PositiveBigIntegerField(default=DEFAULT_MAX_SIZE_BYTES)
    max_latency_ms = models.FloatField(default=DEFAULT_MAX_LATENCY_MS)
    accuracy_floor = models.FloatField(
        default=0.0, help_text="Accuracy needed to rank in the speed, size and efficiency categories."
    )
    daily_limit = models.PositiveIntegerField(
        default=DEFAULT_DAILY_LIMIT, help_text="Submissions per participant per rolling 24 hours."
    )
    total_limit = models.PositiveIntegerField(default=DEFAULT_TOTAL_LIMIT)
    rejected_daily_limit = models.PositiveIntegerField(
        default=DEFAULT_REJECTED_DAILY_LIMIT,
        help_text="Rejected uploads allowed per participant per rolling 24 hours.",
    )
    hardware_class = models.CharField(
        max_length=64, blank=True,
        help_text="The hardware class whose workers score this track (blank: the default class, "
                  "the first one any worker reported).",
    )
    hidden_set = models.CharField(
        max_length=48, blank=True, validators=[validate_hidden_set_name],
        help_text="The hidden set this track is scored on: blank for the task's standard (public) "
                  "test set, or the name of a set imported on every scoring worker with "
                  "`python -m evaluator datasets import --name NAME` (docs/instructors.md).",
    )
    # Optional: a track may open later or close earlier than its competition.
    start = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    # Bumped by every leaderboard rebuild: cached leaderboard pages are keyed by it, so a page
    # is never served from before the latest score.
    leaderboard_version = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["competition", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["competition", "slug"], name="unique_track_slug"),
        ]

    def __str__(self) -> str:
        return f"{self.competition.slug}/{self.slug}"

    @property
    def hidden_set_name(self) -> str:
        """The name of the set the track is scored on (the task's name for its standard set)."""
        return self.hidden_set or self.task

    @property
    def hidden_set_is_public(self) -> bool:
        """Whether anyone can have the labels of the set the track is scored on: the standard sets
        are public; an imported set is public only if it was imported ``--public``, as the
        scoring workers last reported in a scorecard (not public until then)."""
        if not self.hidden_set:
            return True
        reported = (self.submissions.filter(score__isnull=False)
                    .order_by("-score__created_at")
                    .values_list("score__scorecard__hidden_set__public", flat=True).first())
        return reported is True

    @property
    def opens_at(self) -> datetime:
        return self.start or self.competition.start

    @property
    def closes_at(self) -> datetime:
        return self.deadline or self.competition.deadline

    def is_open(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.opens_at <= now < self.closes_at


class Participation(models.Model):
    """A user taking part in a competition; the row is also the lock that serializes uploads."""

    competition = models.ForeignKey(
        Competition, on_delete=models.CASCADE, related_name="participations"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="participations"
    )
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["competition", "user"], name="unique_participation"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.competition.slug}"
