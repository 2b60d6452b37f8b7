"""Taking an upload: who may submit, the quota, storage; then the validation queue takes over."""

from __future__ import annotations

from collections.abc import Iterable

from competitions.models import Track
from competitions.services import join
from coursework.rules import extra_uploads, upload_window
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import dispatch, quotas, validation
from .models import Status, Submission
from .storage import StoredArtifact, store_chunks


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
    # The student's own deadline (an extension) and the competition's late-upload rule.
    window = upload_window(track, user)
    if window in ("not_open", "closed"):
        when = "has not opened yet" if window == "not_open" else "is closed"
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
    """Store one upload and reserve its quota; its check runs on the validation queue.

    Returns the submission, ``received`` (the file is stored, its slots reserved); the validation
    task moves it on (``submissions.validation``). A file whose bytes equal one of the same
    user's earlier uploads on ``track`` (any status but ``failed``, which was our fault) returns
    that submission, marked ``duplicate = True``, and uses no upload. Only checks that take
    milliseconds run here: who may submit, size, empty file, quota. Raises ``UploadRefused`` or
    ``QuotaExceeded``.
    With ``ARENA_VALIDATE_INLINE`` (tests of the web tier only) the check runs here, as it once did.
    """
    check_may_submit(track, user, as_baseline=as_baseline)
    try:
        artifact = store_chunks(chunks)
    except ValueError as exc:
        raise UploadRefused(f"The upload was refused: {exc}.", 413, "too_large") from exc
    if artifact.size_bytes == 0:
        raise UploadRefused("The uploaded file is empty.", 400, "empty")
    submission = _reserve(track, user, artifact, label, as_baseline)
    if submission.duplicate:
        return submission
    if settings.ARENA_VALIDATE_INLINE:
        validation.validate_now(submission.pk)
    else:
        transaction.on_commit(lambda: dispatch.send_validation(submission.pk))
    submission.refresh_from_db()
    return submission


def _reserve(track: Track, user, artifact: StoredArtifact, label: str,
             as_baseline: bool) -> Submission:
    """Insert the submission in the same transaction as the quota check (the row lock holds)."""
    with transaction.atomic():
        if not as_baseline:
            quotas.lock_participation(track, user)  # also serializes identical uploads
        earlier = (Submission.objects.filter(track=track, user=user, sha256=artifact.sha256,
                                             is_baseline=as_baseline)
                   .exclude(status=Status.FAILED).order_by("-created_at", "-id").first())
        if earlier is not None:
            earlier.duplicate = True
            return earlier
        if not as_baseline:
            quotas.check(track, quotas.usage(track, user), extra=extra_uploads(track, user))
        submission = Submission.objects.create(
            track=track, user=user, is_baseline=as_baseline, label=label[:200],
            sha256=artifact.sha256, size_bytes=artifact.size_bytes,
            artifact_path=artifact.path, status=Status.RECEIVED,
            validation_sent_at=timezone.now(),
        )
        submission.duplicate = False
        return submission

