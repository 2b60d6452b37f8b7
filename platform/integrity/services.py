"""The integrity flags, as plain functions the tests call directly.

- ``flag_test_set_training``: the evaluator's train gap (``scorecard["train_gap"]``) says the model
  does no worse on a public hidden set than on the training data (``evaluator.train_gap``).
- ``flag_copies``: another participant of the competition uploaded the same bytes (the file's
  SHA-256), or the same weights under other names or in another order (validation's
  ``info.weights_sha256``, ``evaluator.fingerprint``; computed without running anything).

Both run after a score is written (``signals``), are safe to repeat (one flag per submission, kind
and other submission) and never change a score, a status or a leaderboard row.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from submissions.models import Score, Submission

from .models import Flag


def _flag(submission: Submission, kind: str, reason: str, details: dict,
          other: Submission | None = None) -> Flag:
    existing = Flag.objects.filter(kind=kind, submission=submission, other=other).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return Flag.objects.create(
                competition_id=submission.track.competition_id, kind=kind,
                submission=submission, other=other, reason=reason, details=details)
    except IntegrityError:  # flagged at the same moment by another worker
        return Flag.objects.get(kind=kind, submission=submission, other=other)


def flag_test_set_training(score: Score) -> Flag | None:
    """The train-gap flag of a scored submission, with the figures; None when not flagged."""
    card = score.scorecard or {}
    gap = card.get("train_gap") or {}
    if not gap.get("flagged"):
        return None
    details = {"hidden_set": card.get("hidden_set"), "figures": gap.get("figures"),
               "relative_loss_gap": gap.get("relative_loss_gap"), "rule": gap.get("rule"),
               "loss_unit": gap.get("loss_unit")}
    return _flag(score.submission, Flag.Kind.TEST_SET_TRAINING, gap.get("reason") or "", details)


def weights_sha256(submission: Submission) -> str | None:
    """The weights fingerprint validation recorded for the upload (None for older uploads)."""
    info = (submission.validation_report or {}).get("info") or {}
    value = info.get("weights_sha256")
    return value if isinstance(value, str) and len(value) == 64 else None


def flag_copies(submission: Submission) -> list[Flag]:
    """Flag ``submission`` against the earliest upload by another participant of its competition
    with the same bytes, else with the same weights: one flag links it to the original, so copies
    of copies all point at the first upload. Baselines (the organizers' uploads of the shipped
    models) are not participants' work and are left out on both sides."""
    if submission.is_baseline:
        return []
    others = (Submission.objects.filter(track__competition_id=submission.track.competition_id,
                                        is_baseline=False, created_at__lte=submission.created_at)
              .exclude(user_id=submission.user_id).exclude(pk=submission.pk)
              .select_related("user", "track").order_by("created_at", "id"))
    original = others.filter(sha256=submission.sha256).first()
    if original is not None:
        return [_flag(submission, Flag.Kind.SAME_BYTES, (
            f"The file is byte for byte the one {original.user.get_username()} uploaded as "
            f"submission {original.pk} ({original.label or 'unnamed'}, "
            f"{original.created_at:%Y-%m-%d %H:%M} UTC) to {original.track.slug}."),
            {"sha256": submission.sha256}, original)]
    fingerprint = weights_sha256(submission)
    if fingerprint is None:
        return []
    original = others.filter(validation_report__info__weights_sha256=fingerprint).first()
    if original is None:
        return []
    return [_flag(submission, Flag.Kind.SAME_WEIGHTS, (
        f"The file differs from submission {original.pk} by {original.user.get_username()} "
        f"({original.label or 'unnamed'}, {original.created_at:%Y-%m-%d %H:%M} UTC) but holds "
        f"the same weight values (renamed, reordered or repackaged)."),
        {"weights_sha256": fingerprint, "sha256": submission.sha256,
         "other_sha256": original.sha256}, original)]


def flag_scored(score_id: int) -> list[Flag]:
    """Every flag of a freshly written score (what the receiver on ``Score`` runs)."""
    score = Score.objects.select_related("submission__track").filter(pk=score_id).first()
    if score is None:
        return []
    flags = flag_copies(score.submission)
    gap = flag_test_set_training(score)
    return flags + ([gap] if gap else [])


def flags_for(competition) -> QuerySet:
    """The competition's flags, newest first, with both submissions and their users."""
    return (Flag.objects.filter(competition=competition)
            .select_related("submission__user", "submission__track", "other__user",
                            "other__track"))
