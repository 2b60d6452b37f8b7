"""The validation stage, run by workers of the validation queue, never in the upload request.

An upload is stored and its quota reserved in the request (milliseconds), then left ``received``.
A validation task (``submissions.tasks.validate_submission``, on ``dispatch.validation_queue_name()``, a queue
no scoring run ever holds up) checks the file with the evaluator's gate under a time limit:

- ``claim_validation``: ``received`` (or ``validating`` abandoned past its deadline) →
  ``validating``; the token is the new ``validation_attempts``. A second delivery finds nothing.
- ``record_validation``: ``validating`` with that token → ``queued`` (then a scoring token goes to
  the class's queue) | ``rejected`` (the report's reasons; a file that takes longer than
  ``ARENA_VALIDATION_TIMEOUT_S`` to check is refused as such).
- ``fail_validation``: the gate itself broke → ``failed`` (the platform's fault: it frees its slots).
- ``recover_stuck``: beat's part. ``received`` for longer than ``ARENA_VALIDATION_RESEND_AFTER_S``
  (its message lost, e.g. the broker was down at upload) gets another message; ``validating`` past
  ``ARENA_VALIDATION_STUCK_AFTER_S`` (its worker died) goes back to ``received`` for another try;
  after ``ARENA_VALIDATION_MAX_ATTEMPTS`` tries, or ``ARENA_VALIDATION_GIVE_UP_S`` after the upload,
  it is ``failed``, which gives its daily, total and rejected slots back.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from . import dispatch
from .models import Status, Submission
from .signals import validated
from .storage import read_artifact

log = logging.getLogger(__name__)

NEVER_CHECKED = ("The platform could not check this file in time (an internal problem, not your "
                 "model). It does not count against your quota; please upload it again.")




def claim_validation(submission_id: int) -> int | None:
    """Take the submission for validation; the token, or None when it is not ours to check."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.ARENA_VALIDATION_STUCK_AFTER_S)
    claimable = Q(status=Status.RECEIVED) | Q(status=Status.VALIDATING,
                                              validation_started_at__lt=stale)
    updated = Submission.objects.filter(claimable, pk=submission_id).update(
        status=Status.VALIDATING, validation_started_at=now,
        validation_attempts=F("validation_attempts") + 1, error="", updated_at=now,
    )
    if not updated:
        return None
    return Submission.objects.values_list("validation_attempts", flat=True).get(pk=submission_id)


def check_file(submission: Submission):
    """The evaluator's gate on the stored file: in its locked-down child with a wall-clock limit
    (by default), so a file that crashes or stalls onnx's checker costs a refusal, not a worker."""
    data = read_artifact(submission.artifact_path)
    if settings.ARENA_VALIDATE_ISOLATED:
        from evaluator.validation.isolated import validate_isolated, validation_limits

        limits = validation_limits(timeout_s=settings.ARENA_VALIDATION_TIMEOUT_S,
                                   require_isolation=settings.ARENA_REQUIRE_ISOLATION)
        return validate_isolated(data, submission.track.task, limits=limits)
    if settings.ARENA_REQUIRE_ISOLATION:  # checking in this process would be without them
        from evaluator.sandbox import IsolationUnavailable

        raise IsolationUnavailable(
            "ARENA_VALIDATE_ISOLATED is off, so files would be checked in the worker itself, "
            f"without the required isolation ({', '.join(settings.ARENA_REQUIRE_ISOLATION)})")
    from evaluator.validation import validate

    return validate(data, submission.track.task)


def record_validation(submission_id: int, token: int, report) -> str | None:
    """Write the gate's verdict once; the new status, or None if the claim was lost."""
    now = timezone.now()
    mine = Submission.objects.filter(pk=submission_id, status=Status.VALIDATING,
                                     validation_attempts=token)
    common = {"validation_report": report.to_dict(), "validated_at": now, "updated_at": now}
    if not report.ok:
        done = mine.update(status=Status.REJECTED, error=report.summary(),
                           failure_kind="invalid", finished_at=now, **common)
        return Status.REJECTED if done else None
    if not mine.update(status=Status.QUEUED, queued_at=now, **common):
        return None
    validated.send(sender=Submission, submission_id=submission_id)
    dispatch.enqueue(submission_id)
    return Status.QUEUED


PLATFORM_CHECK_FAILED = ("The platform could not check this file (an internal error). It does not "
                         "count against your quota; please upload it again later.")


def fail_validation(submission_id: int, token: int, reason: str = PLATFORM_CHECK_FAILED) -> bool:
    """The gate crashed (a platform bug): ``failed``, which frees the submission's slots."""
    now = timezone.now()
    return bool(Submission.objects.filter(
        pk=submission_id, status=Status.VALIDATING, validation_attempts=token,
    ).update(
        status=Status.FAILED, failure_kind="platform", finished_at=now, updated_at=now,
        error=reason,
    ))


def validate_now(submission_id: int) -> str | None:
    """Claim, check and record one submission here (what the task does); its new status, or None
    when another run holds it."""
    token = claim_validation(submission_id)
    if token is None:
        return None
    submission = Submission.objects.select_related("track").get(pk=submission_id)
    from evaluator.sandbox import IsolationUnavailable

    try:
        report = check_file(submission)
    except IsolationUnavailable as exc:  # a misconfigured worker: never checked without it
        log.error("validation refused for submission %s: %s", submission_id, exc)
        fail_validation(submission_id, token, f"The platform could not check this file: {exc}. "
                        "It does not count against your quota; please upload it again later.")
        return Status.FAILED
    except Exception:  # a bug in the gate is the platform's fault, never the student's
        log.exception("validation crashed for submission %s", submission_id)
        fail_validation(submission_id, token)
        return Status.FAILED
    return record_validation(submission_id, token, report)


def recover_stuck() -> list[int]:
    """Beat's sweep of the validation stage (module docstring); the ids to send a task for."""
    now = timezone.now()
    give_up = now - timedelta(seconds=settings.ARENA_VALIDATION_GIVE_UP_S)
    stuck = now - timedelta(seconds=settings.ARENA_VALIDATION_STUCK_AFTER_S)
    resend = now - timedelta(seconds=settings.ARENA_VALIDATION_RESEND_AFTER_S)
    pending = Q(status=Status.RECEIVED) | Q(status=Status.VALIDATING,
                                            validation_started_at__lt=stuck)
    out_of_tries = Q(validation_attempts__gte=settings.ARENA_VALIDATION_MAX_ATTEMPTS)
    failed = Submission.objects.filter(pending).filter(out_of_tries | Q(created_at__lt=give_up))
    gave_up = list(failed.values_list("id", flat=True))
    if gave_up:
        failed.update(status=Status.FAILED, failure_kind="platform", finished_at=now,
                      updated_at=now, error=NEVER_CHECKED)
        log.warning("gave up validating submissions %s", gave_up)
    # A worker died mid-check: back to received, and another message (below).
    dead = Submission.objects.filter(status=Status.VALIDATING, validation_started_at__lt=stuck)
    retried = list(dead.values_list("id", flat=True))
    Submission.objects.filter(pk__in=retried, status=Status.VALIDATING,
                              validation_started_at__lt=stuck).update(
        status=Status.RECEIVED, validation_sent_at=now, updated_at=now)
    lost = Submission.objects.filter(status=Status.RECEIVED).exclude(pk__in=retried).filter(
        Q(validation_sent_at__isnull=True, created_at__lt=resend)
        | Q(validation_sent_at__lt=resend))
    ids = list(lost.values_list("id", flat=True))
    Submission.objects.filter(pk__in=ids, status=Status.RECEIVED).update(validation_sent_at=now)
    return retried + ids
