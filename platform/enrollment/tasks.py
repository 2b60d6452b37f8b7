"""The set-password e-mail of an imported student, sent by a worker (``services.queue_invitations``
publishes one per student on the validation queue once the import has committed)."""

from __future__ import annotations

import smtplib

from celery import shared_task
from django.conf import settings

from . import services


# Retried on the mail server's errors (refused, timed out, 4xx/5xx answers) with a growing wait:
# ARENA_MAIL_RETRY_S (30 s), then twice as long each time up to 15 min apart, for about two hours
# in all; then the task gives up and logs it (importing the roster again mails whoever still has
# no password).
@shared_task(name=services.SEND_INVITATION, acks_late=True,
             autoretry_for=(smtplib.SMTPException, OSError),
             retry_backoff=settings.ARENA_MAIL_RETRY_S,
             retry_backoff_max=900, retry_jitter=True, max_retries=10)
def send_invitation(user_id: int, competition_id: int, base_url: str) -> bool:
    return services.send_invitation(user_id, competition_id, base_url)
