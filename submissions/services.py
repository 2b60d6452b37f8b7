"""Taking an upload: who may submit, the quota, storage, the validation gate, then the queue."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from competitions.models import Track
from competitions.services import join
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import quotas
from .models import Status, Submission
from .storage import StoredArtifact, read_artifact, store_chunks

log = logging.getLogger(__name__)


class UploadRefused(Exception):
    """The upload is not accepted at all; ``status`` is the HTTP status an API answers with."""

    def __init__(self, message: str, status: int = 400, code: str = "refused"):
        super().__init__(message)
        self.status = status
        self.code = code


def check_may_submit(track: Track, user, *, as_baseline: bool = False) -> None:
    """Raise ``UploadRefused`` unless ``user`` may upload to ``track`` now (joining if need be)."""
    competition = track.competition
    if as_baseline:
        if not competition.is_organizer(user):
            raise UploadRefused("Only the competition's organizers can add baselines.", 403,
                                "not_organizer")
        return
    if not track.is_open():
        when = "has not opened yet" if timezone.now() < track.opens_at else "is closed"
        raise UploadRefused(f"The track {track.slug} of {competition.title} {when}.", 403,
                            "closed")
    if competition.is_participant(user):
        return
    if not competition.is_public:
        raise UploadRefused("This competition is by invitation: ask its organizers to add you.",
                            403, "not_participant")
    join(competition, user)


def submit(
    track: Track, user, chunks: Iterable[bytes], *, label: str = "", as_baseline: bool = False
) -> Submission:
    """Store, count against the quota, validate and (if valid) queue one upload.

    Returns the submission, which is ``queued`` or ``rejected`` (the reason in its ``error``), or
    ``failed`` when the validator itself broke. Raises ``UploadRefused`` or ``QuotaExceeded``.
    """
    check_may_submit(track, user, as_baseline=as_baseline)
    try:
        artifact = store_chunks(chunks)
    except ValueError as exc:
        raise UploadRefused(f"The upload was refused: {exc}.", 413, "too_large") from exc
    if artifact.size_bytes == 0:
        raise UploadRefused("The uploaded file is empty.", 400, "empty")
    submission = _reserve(track, user, artifact, label, as_baseline)
    validate_and_queue(submission)
    return submission


def _reserve(track: Track, user, artifact: StoredArtifact, label: str,
             as_baseline: bool) -> Submission:
    """Insert the submission in the same transaction as the quota check (the row lock holds)."""
    with transaction.atomic():
        if not as_baseline:
            quotas.lock_participation(track, user)
            quotas.check(track, quotas.usage(track, user))
        return Submission.objects.create(
            track=track, user=user, is_baseline=as_baseline, label=label[:200],
            sha256=artifact.sha256, size_bytes=artifact.size_bytes,
            artifact_path=artifact.path, status=Status.RECEIVED,
        )


def validate_and_queue(submission: Submission) -> None:
    """The validation gate, run in the request so the student learns at once what is wrong."""
    submission.status = Status.VALIDATING
    submission.save(update_fields=["status", "updated_at"])
    try:
        report = _validator()(read_artifact(submission.artifact_path), submission.track.task)
    except Exception:  # a bug in the gate is the platform's fault, never the student's
        log.exception("validation crashed for submission %s", submission.pk)
        _finish(submission, Status.FAILED,
                error="The platform could not check this file (an internal error). It does not "
                      "count against your quota; please upload it again later.")
        return
    submission.validation_report = report.to_dict()
    submission.validated_at = timezone.now()
    if not report.ok:
        _finish(submission, Status.REJECTED, error=report.summary(), failure_kind="invalid")
        return
    submission.status = Status.QUEUED
    submission.queued_at = timezone.now()
    submission.save(update_fields=["validation_report", "validated_at", "status", "queued_at",
                                   "updated_at"])
    enqueue(submission.pk)


def _validator():
    """The evaluator's gate; by default in a locked-down child, so a file that crashes onnx's
    C++ checker costs a refusal, not a web worker."""
    if settings.ARENA_VALIDATE_ISOLATED:
        from evaluator.validation.isolated import validate_isolated

        return validate_isolated
    from evaluator.validation import validate

    return validate


def _finish(submission: Submission, status: str, *, error: str, failure_kind: str = "") -> None:
    submission.status = status
    submission.error = error
    submission.failure_kind = failure_kind
    submission.finished_at = timezone.now()
    submission.save()


def enqueue(submission_id: int) -> None:
    """Send a scoring token to the queue of the class that scores the submission's track, once
    the current transaction (if any) has committed. The submission waits in the database; the
    worker that takes the token claims the fairest waiting one (``submissions.queue``)."""
    from hardware.services import track_class_name

    from .tasks import send_tokens

    track = Submission.objects.select_related("track").get(pk=submission_id).track
    class_name = track_class_name(track)
    transaction.on_commit(lambda: send_tokens(class_name))
