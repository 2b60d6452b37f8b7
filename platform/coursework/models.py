"""What a course adds to a competition: final picks, per-student extensions, hidden submissions,
and the competition's course policy (how many final picks, whether late uploads are taken)."""

from __future__ import annotations

from competitions.models import Competition
from django.conf import settings
from django.db import models

from submissions.models import Submission

DEFAULT_FINAL_PICKS = 2  # as Kaggle


class Policy(models.Model):
    """A competition's course rules; a competition without a row uses the defaults."""

    competition = models.OneToOneField(Competition, on_delete=models.CASCADE,
                                       related_name="course_policy")
    final_picks = models.PositiveSmallIntegerField(
        default=DEFAULT_FINAL_PICKS,
        help_text="How many submissions per track a student may mark as final (0: no picking; "
                  "the private board then ranks each student's best public submission).")
    accept_late = models.BooleanField(
        default=False, help_text="Take uploads after the deadline: scored and shown, marked "
                                 "late, never ranked (unless the student has an extension).")

    def __str__(self) -> str:
        return f"policy of {self.competition.slug}"


class FinalPick(models.Model):
    submission = models.OneToOneField(Submission, on_delete=models.CASCADE,
                                      related_name="final_pick")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"final pick #{self.submission_id}"


class Extension(models.Model):
    """One student's own deadline and extra uploads in one competition (all its tracks)."""

    competition = models.ForeignKey(Competition, on_delete=models.CASCADE,
                                    related_name="extensions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="extensions")
    deadline = models.DateTimeField(null=True, blank=True,
                                    help_text="The student's own deadline (blank: the usual).")
    extra_uploads = models.PositiveIntegerField(
        default=0, help_text="Added to the daily and the total upload limits of every track.")
    note = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["competition", "user"],
                                               name="one_extension_per_student")]

    def __str__(self) -> str:
        return f"extension of {self.user} in {self.competition.slug}"


class Hiding(models.Model):
    """An organizer hid the submission from the leaderboard; the student sees the reason."""

    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="hiding")
    reason = models.TextField()
    hidden_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                  null=True, related_name="+")
    hidden_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"#{self.submission_id} hidden"
