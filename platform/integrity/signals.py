"""Flags are computed once a score is committed, outside the scoring transaction: a failure here
is logged and never costs the score (``robust``)."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from submissions.models import Score

from .services import flag_scored


@receiver(post_save, sender=Score, dispatch_uid="integrity.flag_scored")
def flag_after_scoring(sender, instance: Score, created: bool, **kwargs) -> None:
    transaction.on_commit(lambda: flag_scored(instance.pk), robust=True)
