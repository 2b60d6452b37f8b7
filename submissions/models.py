"""A submission's life (upload → validation → queue → scoring → result) and its score."""

from __future__ import annotations

from competitions.models import Track
from django.conf import settings
from django.db import models
from django.db.models.fields.json import KeyTransform


class Status(models.TextChoices):
    RECEIVED = "received", "Received"
    VALIDATING = "validating", "Validating"
    QUEUED = "queued", "Queued"
    SCORING = "scoring", "Scoring"
    SCORED = "scored", "Scored"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Failed"
    OVER_LIMIT = "over_limit", "Over the limit"


# Statuses that use up a participant's submission quota. Rejected ones have their own cap and
# failed ones (the platform's fault) never count.
COUNTED_STATUSES = (
    Status.RECEIVED, Status.VALIDATING, Status.QUEUED, Status.SCORING, Status.SCORED,
    Status.OVER_LIMIT,
)
FINAL_STATUSES = (Status.SCORED, Status.REJECTED, Status.FAILED, Status.OVER_LIMIT)
# Waiting for, or in, the validation stage: may still end rejected, so it holds a slot of the
# rejected-upload cap too (submissions.quotas) until its check is done.
PENDING_CHECK_STATUSES = (Status.RECEIVED, Status.VALIDATING)


class Submission(models.Model):
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="submissions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions"
    )
    is_baseline = models.BooleanField(
        default=False, help_text="An instructor's reference model: shown, marked, never ranked."
    )
    label = models.CharField(max_length=200, blank=True, help_text="The uploaded file's name.")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    # Relative to ARENA_ARTIFACT_DIR; never a URL: artifacts are not served.
    artifact_path = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    validation_report = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why it was rejected or failed, in words.")
    failure_kind = models.CharField(max_length=32, blank=True)
    # Each claim for scoring increments this; only the run holding the latest claim may write.
    attempts = models.PositiveIntegerField(default=0)
    # The validation stage has its own claims (submissions.validation): the token is this count.
    validation_attempts = models.PositiveIntegerField(default=0)
    # When a validation task was last sent (beat re-sends one lost with the broker).
    validation_sent_at = models.DateTimeField(null=True, blank=True)
    validation_started_at = models.DateTimeField(null=True, blank=True)
    platform_retries = models.PositiveIntegerField(default=0)
    # After a platform error the submission waits in the queue until then (retry back-off).
    retry_after = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    scoring_started_at = models.DateTimeField(null=True, blank=True)
    # The scoring worker touches this every ARENA_HEARTBEAT_EVERY_S while its run lasts; a run
    # whose heartbeat stops for ARENA_HEARTBEAT_TIMEOUT_S is taken for lost with its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "track", "created_at"], name="sub_quota_idx"),
            models.Index(fields=["status", "scoring_started_at"], name="sub_status_idx"),
            # The integrity check after every score looks for earlier uploads of the same bytes
            # and of the same weights (``integrity.services.flag_copies``): without these, two
            # scans of the whole table per score write.
            models.Index(fields=["sha256"], name="sub_sha256_idx"),
            models.Index(KeyTransform("weights_sha256", KeyTransform("info", "validation_report")),
                         name="sub_weights_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.user} {self.track} {self.status}"

    @property
    def competition(self):
        return self.track.competition


class Score(models.Model):
    """The evaluator's scorecard for one submission, written exactly once (one row per submission)."""

    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="score")
    public_accuracy = models.FloatField(null=True)
    private_accuracy = models.FloatField(null=True)
    public_bits_per_char = models.FloatField(null=True)
    private_bits_per_char = models.FloatField(null=True)
    latency_ms = models.FloatField(null=True)
    latency_p90_ms = models.FloatField(null=True)
    speed_index = models.FloatField(null=True)
    # The 95% interval of speed_index (the scorecard's speed_index_ci).
    speed_index_low = models.FloatField(null=True)
    speed_index_high = models.FloatField(null=True)
    # The hardware class of the worker that scored it (the scorecard's provenance).
    hardware_class = models.CharField(max_length=64, blank=True)
    # calibration[task] of that class / speed_index (ms): comparable across workers and hours;
    # the latency limit is checked on it. Its interval is the calibration / speed_index_ci reversed.
    normalized_latency_ms = models.FloatField(null=True)
    normalized_latency_low_ms = models.FloatField(null=True)
    normalized_latency_high_ms = models.FloatField(null=True)
    warnings = models.JSONField(default=list, blank=True,
                                help_text="The evaluator's student-facing warnings.")
    size_bytes = models.PositiveBigIntegerField(null=True, help_text="Deflate-compressed size.")
    raw_bytes = models.PositiveBigIntegerField(null=True)
    params = models.PositiveBigIntegerField(null=True)
    nonzero_params = models.PositiveBigIntegerField(null=True)
    peak_memory_mb = models.FloatField(null=True)
    throughput = models.FloatField(null=True)
    over_limit = models.JSONField(default=list, help_text="Which track limits the model exceeds.")
    scorecard = models.JSONField(help_text="The evaluator's full scorecard.")
    created_at = models.DateTimeField(auto_now_add=True)

    def split_accuracy(self, split: str) -> float | None:
        return self.public_accuracy if split == "public" else self.private_accuracy

    def split_bits_per_char(self, split: str) -> float | None:
        return self.public_bits_per_char if split == "public" else self.private_bits_per_char


class Rescore(models.Model):
    """One scored submission re-scored on another hardware class (``manage.py rescore_track``).

    The submission keeps its status and its current ``Score`` (still on the leaderboard) until the
    new scorecard lands; then the score is replaced in the same transaction that rebuilds the
    leaderboard. At most one rescore per submission is queued or running at a time.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SCORING = "scoring", "Scoring"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="rescores")
    hardware_class = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    platform_retries = models.PositiveIntegerField(default=0)
    retry_after = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The scorecard it replaced (kept for the record: the leaderboard shows the new one).
    previous_scorecard = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    scoring_started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # as Submission.heartbeat_at
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # Exactly once: a second rescore of the same submission cannot be queued while one is
            # pending, whoever asks.
            models.UniqueConstraint(
                fields=["submission"], condition=models.Q(state__in=["queued", "scoring"]),
                name="one_pending_rescore",
            ),
        ]

    def __str__(self) -> str:
        return f"rescore of #{self.submission_id} on {self.hardware_class} ({self.state})"
