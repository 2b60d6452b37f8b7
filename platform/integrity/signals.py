"""Copies are looked for once an upload has passed validation (its weights fingerprint is in the
report), and every flag again once a score is committed; both outside the transaction that wrote
the row, so a failure here is logged and never costs the upload or the score (``robust``)."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from submissions.models import Score, Submission
from submissions.signals import validated

from .services import flag_copies, flag_scored


@receiver(post_save, sender=Score, dispatch_uid="integrity.flag_scored")
def flag_after_scoring(sender, instance: Score, created: bool, **kwargs) -> None:
    transaction.on_commit(lambda: flag_scored(instance.pk), robust=True)


def _flag_copies_of(submission_id: int) -> None:
    submission = Submission.objects.select_related("track").filter(pk=submission_id).first()
    if submission is not None:
        flag_copies(submission)


@receiver(validated, dispatch_uid="integrity.flag_copies")
def flag_after_validation(sender, submission_id: int, **kwargs) -> None:
    transaction.on_commit(lambda: _flag_copies_of(submission_id), robust=True)
