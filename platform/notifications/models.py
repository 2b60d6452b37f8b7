"""Who wants score e-mails, and which submissions were already told about (exactly once)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from submissions.models import Submission


class Preference(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="notification_preference")
    email_results = models.BooleanField(
        default=True, help_text="E-mail me when an upload of mine is scored or rejected.")


class Notice(models.Model):
    """The e-mail about one submission's result: the row is written before the mail goes, so a
    sweep running twice never mails twice."""

    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="notice")
    status = models.CharField(max_length=16)
    sent_at = models.DateTimeField(auto_now_add=True)
    error = models.TextField(blank=True)
