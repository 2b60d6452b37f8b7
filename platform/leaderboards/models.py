"""Precomputed leaderboard rows: rebuilt when a score is written, so a read costs the rows shown."""

from __future__ import annotations

from competitions.models import Track
from django.conf import settings
from django.db import models

from submissions.models import Submission

from .rules import CATEGORY_LABELS, SPLIT_LABELS


class LeaderboardEntry(models.Model):
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="leaderboard_entries")
    split = models.CharField(max_length=8, choices=list(SPLIT_LABELS.items()))
    category = models.CharField(max_length=16, choices=list(CATEGORY_LABELS.items()))
    position = models.PositiveIntegerField(help_text="Display order, baselines included.")
    rank = models.PositiveIntegerField(null=True, help_text="None for baselines (never ranked).")
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    username = models.CharField(max_length=150)
    # The participant's team (``teams``), when the student who submitted is in one: the row is
    # then the team's (one per board), ``user`` the member whose submission it is.
    team = models.ForeignKey("teams.Team", on_delete=models.SET_NULL, null=True,
                             related_name="+")
    team_name = models.CharField(max_length=60, blank=True)
    is_baseline = models.BooleanField(default=False)
    label = models.CharField(max_length=200, blank=True)
    accuracy = models.FloatField()
    bits_per_char = models.FloatField(null=True)
    latency_ms = models.FloatField(help_text="The raw median latency on the scoring worker.")
    # What speed is ranked on (higher is faster) and its 95% interval; null on old scorecards.
    speed_index = models.FloatField(null=True)
    speed_index_low = models.FloatField(null=True)
    speed_index_high = models.FloatField(null=True)
    # The hardware class's reference latency / speed index, with its interval (ms).
    normalized_latency_ms = models.FloatField(null=True)
    normalized_latency_low_ms = models.FloatField(null=True)
    normalized_latency_high_ms = models.FloatField(null=True)
    tied = models.BooleanField(
        default=False, help_text="Shares its rank with another row (overlapping speed intervals).")
    size_bytes = models.PositiveBigIntegerField()
    accuracy_per_mb = models.FloatField()
    submitted_at = models.DateTimeField()
    # The category's sort key (``rules.sort_key``: metric, then the next category's metric, each
    # as a kind and a value, smaller first; then submitted_at and the submission), so that one
    # score's update finds its place and the rows that move with one indexed query
    # (``leaderboards.incremental``). Null on Pareto rows and on rows stored before the key was.
    key_kind = models.SmallIntegerField(null=True)
    key_value = models.FloatField(null=True)
    tie_kind = models.SmallIntegerField(null=True)
    tie_value = models.FloatField(null=True)

    class Meta:
        ordering = ["track", "split", "category", "position"]
        indexes = [
            models.Index(fields=["track", "split", "category", "position"], name="lb_read_idx"),
            models.Index(fields=["track", "split", "category", "key_kind", "key_value", "tie_kind",
                                 "tie_value", "submitted_at", "submission"], name="lb_key_idx"),
            models.Index(fields=["track", "user"], name="lb_user_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["track", "split", "category", "position"], name="unique_lb_position"
            ),
        ]
