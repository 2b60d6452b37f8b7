"""Flags for the organizer: a model that may have been trained on a public hidden set, and two
participants' uploads that are copies of each other. A flag hides nothing; the organizer decides."""

from __future__ import annotations

from competitions.models import Competition
from django.db import models

from submissions.models import Submission


class Flag(models.Model):
    class Kind(models.TextChoices):
        TEST_SET_TRAINING = "test_set_training", "May have been trained on the test set"
        SAME_BYTES = "same_bytes", "Same file as another participant's"
        SAME_WEIGHTS = "same_weights", "Same weights as another participant's (renamed or reordered)"

    competition = models.ForeignKey(Competition, on_delete=models.CASCADE,
                                    related_name="integrity_flags")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # The later upload; for a copy, ``other`` is the earlier one it matches.
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="flags")
    other = models.ForeignKey(Submission, on_delete=models.CASCADE, null=True, blank=True,
                              related_name="flags_as_original")
    reason = models.TextField(help_text="What was found, with the figures, in words.")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "submission", "other"],
                                    name="unique_flag_per_pair"),
            models.UniqueConstraint(fields=["kind", "submission"], condition=models.Q(other=None),
                                    name="unique_flag_single"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: submission {self.submission_id}"
