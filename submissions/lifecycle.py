"""The scoring half of a submission's life, as database transitions that are safe to repeat.

Every transition is a conditional UPDATE (``… WHERE status = …``), so two workers (a re-delivered
message, a re-queue by the periodic task) can never both score or both write one submission:

- ``claim``: ``queued`` (or ``scoring`` abandoned: heartbeat silent, or past the stuck deadline)
  → ``scoring``; the claim token is the new ``attempts`` value. While it runs, the worker's
  ``heartbeat`` touches the row.
- ``record_scorecard``: ``scoring`` with that token → ``scored`` | ``over_limit`` | ``rejected``;
  the ``Score`` row is unique per submission, and ``signals.scores_changed`` is sent in the same
  transaction (the leaderboards app updates that student's rows there).
- ``release_for_retry``: ``scoring`` with that token → ``queued`` (platform error, retried after a
  back-off) or ``failed`` once the retries are used up. Neither counts against the student's quota.

A re-score on another hardware class (``Rescore``) has the same three transitions on its own row
(``claim_rescore``, ``record_rescore``, ``release_rescore``); the submission keeps its score until
``record_rescore`` replaces it.
"""

from __future__ import annotations

from datetime import timedelta

from competitions.limits import over_limit_reasons, track_limits
from competitions.models import Track
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Subquery
from django.utils import timezone
from hardware.services import track_class_name

from . import dispatch
from .models import Rescore, Score, Status, Submission
from .signals import scores_changed

# Statuses of a submission that holds a Score (what a re-score replaces).
SCORED_STATUSES = (Status.SCORED, Status.OVER_LIMIT)


def stuck_cutoff():
    return timezone.now() - timedelta(seconds=settings.ARENA_STUCK_AFTER_S)


def abandoned() -> Q:
    """A run (of a Submission or a Rescore in scoring) taken for lost: its heartbeat has been
    silent for ``ARENA_HEARTBEAT_TIMEOUT_S`` (its worker died), or it has lasted past
    ``ARENA_STUCK_AFTER_S`` (a worker alive but never finishing)."""
    silent = timezone.now() - timedelta(seconds=settings.ARENA_HEARTBEAT_TIMEOUT_S)
    return (Q(scoring_started_at__lt=stuck_cutoff()) | Q(heartbeat_at__lt=silent)
            | Q(heartbeat_at__isnull=True, scoring_started_at__lt=silent))


def heartbeat(model, row_id: int, token: int) -> bool:
    """The scoring worker is alive and still holds claim ``token`` (False: it lost the claim)."""
    state = {"state": Rescore.State.SCORING} if model is Rescore else {"status": Status.SCORING}
    return bool(model.objects.filter(pk=row_id, attempts=token, **state).update(
        heartbeat_at=timezone.now()))


def claim(submission_id: int, also: Q | None = None) -> int | None:
    """Take the submission for scoring; the claim token, or None when it is not ours to score.

    ``also``: a further condition checked in the same UPDATE (the worker's hardware class, as a
    condition on ``track_id`` so the UPDATE needs no join)."""
    now = timezone.now()
    ready = Q(retry_after__isnull=True) | Q(retry_after__lte=now)
    claimable = (Q(status=Status.QUEUED) & ready) | (Q(status=Status.SCORING) & abandoned())
    rows = Submission.objects.filter(claimable, pk=submission_id)
    if also is not None:
        rows = rows.filter(also)
    updated = rows.update(
        status=Status.SCORING, scoring_started_at=now, heartbeat_at=now,
        attempts=F("attempts") + 1, retry_after=None, updated_at=now,
    )
    if not updated:
        return None
    return Submission.objects.values_list("attempts", flat=True).get(pk=submission_id)


def record_scorecard(submission_id: int, token: int, card: dict,
                     hardware_class: str = "") -> str | None:
    """Write the evaluator's scorecard once; the new status, or None if the claim was lost.

    ``hardware_class`` is the scoring worker's class, used when the card's provenance lacks one.
    """
    with transaction.atomic():
        # Lock order everywhere: track, then submission. The track lock serializes rebuilds.
        track = _lock_track_of(submission_id)
        submission = Submission.objects.select_for_update().get(pk=submission_id)
        if submission.status != Status.SCORING or submission.attempts != token:
            return None
        if not card.get("valid"):
            return _record_model_fault(submission, card)
        fields = score_fields(card, track.task, hardware_class)
        # The limits are checked before the row is written, so the Score is one INSERT (and its
        # post_save receivers, the integrity flags, run once).
        fields["over_limit"] = over_limit_reasons(
            fields["size_bytes"], fields["latency_ms"], track_limits(track),
            normalized_latency_ms=fields.get("normalized_latency_ms"))
        score = Score.objects.create(submission=submission, **fields)
        submission.status = Status.OVER_LIMIT if score.over_limit else Status.SCORED
        submission.error = "; ".join(score.over_limit)
        submission.finished_at = timezone.now()
        submission.save(update_fields=["status", "error", "finished_at", "updated_at"])
        if submission.status == Status.SCORED:
            _scores_changed(track, submission)
        _rescore_if_moved(track, submission, score.hardware_class)
        return submission.status


def _lock_track_of(submission_id: int) -> Track:
    """The submission's track, locked (its row only), with its competition: one query.

    The competition comes along because the ranking's course rules read its deadline."""
    track_id = Submission.objects.filter(pk=submission_id).values("track_id")[:1]
    return (Track.objects.select_for_update(of=("self",)).select_related("competition")
            .get(pk=Subquery(track_id)))


def _scores_changed(track: Track, submission: Submission) -> None:
    # In this transaction, under the track's lock: the leaderboard moves with the score.
    scores_changed.send(sender=Submission, track=track, submission_id=submission.pk,
                        user_id=submission.user_id)


def _rescore_if_moved(track: Track, submission: Submission, scored_on: str) -> None:
    """The track moved to another class while this run was under way (``rescore_track``): queue
    a re-score on the track's class so the whole track ends up scored on one class."""
    if not scored_on:
        return
    target = track_class_name(track)
    if not target or scored_on == target:
        return
    if queue_rescores([submission.pk], target):
        transaction.on_commit(lambda: dispatch.send_tokens(target, 1))


def queue_rescores(submission_ids: list[int], hardware_class: str) -> list[int]:
    """Queue a re-score on ``hardware_class`` of each scored submission that has none pending;
    the submission ids queued (exactly once each: a pending one is never doubled)."""
    queued = []
    now = timezone.now()
    for submission_id in submission_ids:
        with transaction.atomic():
            if Rescore.objects.filter(submission_id=submission_id,
                                      state__in=(Rescore.State.QUEUED, Rescore.State.SCORING)
                                      ).exists():
                continue
            # The partial unique index is the last word if two callers race past the check.
            try:
                with transaction.atomic():
                    Rescore.objects.create(submission_id=submission_id,
                                           hardware_class=hardware_class, queued_at=now)
            except IntegrityError:
                continue
            queued.append(submission_id)
    return queued


def claim_rescore(rescore_id: int, hardware_class: str) -> int | None:
    """Take a pending re-score (queued, or abandoned past the stuck deadline); its token."""
    now = timezone.now()
    ready = Q(retry_after__isnull=True) | Q(retry_after__lte=now)
    claimable = (Q(state=Rescore.State.QUEUED) & ready) | (
        Q(state=Rescore.State.SCORING) & abandoned())
    if not Rescore.objects.filter(claimable, pk=rescore_id, hardware_class=hardware_class).update(
        state=Rescore.State.SCORING, scoring_started_at=now, heartbeat_at=now,
        attempts=F("attempts") + 1, retry_after=None,
    ):
        return None
    return Rescore.objects.values_list("attempts", flat=True).get(pk=rescore_id)


def record_rescore(rescore_id: int, token: int, card: dict,
                   hardware_class: str = "") -> str | None:
    """Replace the submission's score with the new class's (or, on a model fault there, reject
    it with the evaluator's words); the submission's new status, None if the claim was lost."""
    with transaction.atomic():
        submission_id = Rescore.objects.values_list("submission_id", flat=True).get(pk=rescore_id)
        track_id = Submission.objects.values_list("track_id", flat=True).get(pk=submission_id)
        track = Track.objects.select_for_update().get(pk=track_id)
        submission = Submission.objects.select_for_update().get(pk=submission_id)
        rescore = Rescore.objects.select_for_update().get(pk=rescore_id)
        if rescore.state != Rescore.State.SCORING or rescore.attempts != token:
            return None
        rescore.state = Rescore.State.DONE
        rescore.finished_at = timezone.now()
        if submission.status not in SCORED_STATUSES:  # nothing left to replace
            rescore.error = f"the submission was {submission.status} by then"
            rescore.save(update_fields=["state", "finished_at", "error"])
            return submission.status
        old = Score.objects.filter(submission=submission).first()
        rescore.previous_scorecard = old.scorecard if old else None
        rescore.save(update_fields=["state", "finished_at", "previous_scorecard"])
        if old is not None:
            old.delete()
        if not card.get("valid"):
            # On the track's hardware the model faults (e.g. too slow): judged like an upload.
            _record_model_fault(submission, card)
        else:
            fields = score_fields(card, track.task, hardware_class)
            fields["over_limit"] = over_limit_reasons(
                fields["size_bytes"], fields["latency_ms"], track_limits(track),
                normalized_latency_ms=fields.get("normalized_latency_ms"))
            score = Score.objects.create(submission=submission, **fields)
            submission.status = Status.OVER_LIMIT if score.over_limit else Status.SCORED
            submission.error = "; ".join(score.over_limit)
            submission.save(update_fields=["status", "error", "updated_at"])
            _rescore_if_moved(track, submission, score.hardware_class)
        _scores_changed(track, submission)
        return submission.status


def release_rescore(rescore_id: int, token: int, reason: str) -> bool:
    """After a platform error: the re-score waits for a retry (True) or fails for good, and the
    submission keeps the score it has."""
    mine = Rescore.objects.filter(pk=rescore_id, state=Rescore.State.SCORING, attempts=token)
    retries_left = Q(platform_retries__lt=settings.ARENA_SCORING_MAX_RETRIES)
    now = timezone.now()
    retries = mine.values_list("platform_retries", flat=True).first() or 0
    if mine.filter(retries_left).update(
        state=Rescore.State.QUEUED, queued_at=now, platform_retries=F("platform_retries") + 1,
        retry_after=now + retry_wait(retries), error=f"platform error: {reason}",
    ):
        return True
    mine.update(state=Rescore.State.FAILED, finished_at=now,
                error=f"gave up after platform errors: {reason}")
    return False


def retry_wait(retries_so_far: int) -> timedelta:
    """The back-off before the next try: the base doubled per platform retry already made."""
    return timedelta(seconds=settings.ARENA_SCORING_RETRY_BACKOFF_S * 2 ** retries_so_far)


def _record_model_fault(submission: Submission, card: dict) -> str:
    # The model itself failed (timeout, memory, crash, bad output): the student's fault, final.
    submission.status = Status.REJECTED
    submission.failure_kind = card.get("failure_kind") or "invalid"
    submission.error = card.get("error") or "The model failed when it was run."
    submission.finished_at = timezone.now()
    submission.save(update_fields=["status", "failure_kind", "error", "finished_at", "updated_at"])
    return submission.status


def normalized_latency(reference_ms: float | None, speed_index: float | None,
                       speed_index_ci: list | tuple | None) -> tuple[float | None, ...]:
    """(normalized, low, high) in ms: reference latency / speed index; the interval's ends swap
    because a higher speed index is a lower latency."""
    if not reference_ms or not speed_index or speed_index <= 0:
        return None, None, None
    low = high = None
    if speed_index_ci and len(speed_index_ci) == 2 and all(
        isinstance(end, (int, float)) and end > 0 for end in speed_index_ci
    ):
        low, high = reference_ms / max(speed_index_ci), reference_ms / min(speed_index_ci)
    return reference_ms / speed_index, low, high


def score_fields(card: dict, task: str | None = None, hardware_class: str = "") -> dict:
    """The Score columns taken from an evaluator scorecard (the whole card is kept as well).

    With ``task``, the normalized latency uses the calibration of the card's hardware class.
    """
    from hardware.models import HardwareClass

    splits = card.get("splits") or {}
    public, private = splits.get("public") or {}, splits.get("private") or {}
    provenance = card.get("provenance") or {}
    class_name = provenance.get("hardware_class") or hardware_class or ""
    ci = card.get("speed_index_ci")
    reference = None
    if task and class_name:
        calibrated = HardwareClass.objects.filter(name=class_name).first()
        reference = calibrated.reference_latency_ms(task) if calibrated else None
    normalized, normalized_low, normalized_high = normalized_latency(
        reference, card.get("speed_index"), ci)
    valid_ci = isinstance(ci, (list, tuple)) and len(ci) == 2
    return {
        "hardware_class": class_name,
        "speed_index_low": min(ci) if valid_ci else None,
        "speed_index_high": max(ci) if valid_ci else None,
        "normalized_latency_ms": normalized,
        "normalized_latency_low_ms": normalized_low,
        "normalized_latency_high_ms": normalized_high,
        "warnings": list(card.get("warnings") or []),
        "public_accuracy": public.get("accuracy"),
        "private_accuracy": private.get("accuracy"),
        "public_bits_per_char": public.get("bits_per_char"),
        "private_bits_per_char": private.get("bits_per_char"),
        "latency_ms": card.get("latency_ms"),
        "latency_p90_ms": card.get("latency_p90_ms"),
        "speed_index": card.get("speed_index"),
        "size_bytes": card.get("size_bytes"),
        "raw_bytes": card.get("raw_bytes"),
        "params": card.get("params"),
        "nonzero_params": card.get("nonzero_params"),
        "peak_memory_mb": card.get("peak_memory_mb"),
        "throughput": card.get("throughput"),
        "scorecard": card,
    }


def release_for_retry(submission_id: int, token: int, reason: str) -> bool:
    """After a platform error: back to ``queued`` (True: retry it) or ``failed`` when out of tries."""
    mine = Submission.objects.filter(pk=submission_id, status=Status.SCORING, attempts=token)
    retries_left = Q(platform_retries__lt=settings.ARENA_SCORING_MAX_RETRIES)
    now = timezone.now()
    retries = mine.values_list("platform_retries", flat=True).first() or 0
    if mine.filter(retries_left).update(
        status=Status.QUEUED, queued_at=now, platform_retries=F("platform_retries") + 1,
        retry_after=now + retry_wait(retries),
        error=f"Scoring hit a platform error and will be retried: {reason}",
        updated_at=now,
    ):
        return True
    mine.update(
        status=Status.FAILED, finished_at=timezone.now(), failure_kind="platform",
        error=f"Scoring failed because of a platform error ({reason}). It does not count against "
              "your quota; please upload the file again.",
        updated_at=timezone.now(),
    )
    return False


def requeue_stuck() -> list[int]:
    """Put back submissions whose worker died (``scoring`` past the deadline) and re-send
    ``queued`` ones whose message may have been lost; returns the ids to send to the queue."""
    cutoff = stuck_cutoff()
    now = timezone.now()
    give_up = Q(attempts__gte=settings.ARENA_SCORING_MAX_RETRIES + 1)
    lost = abandoned()
    stuck = Submission.objects.filter(lost, status=Status.SCORING)
    stuck.filter(give_up).update(
        status=Status.FAILED, finished_at=now, failure_kind="platform", updated_at=now,
        error="Scoring kept stopping without a result. It does not count against your quota; "
              "please upload the file again.",
    )
    ids = []
    for submission_id in stuck.values_list("id", flat=True):
        if Submission.objects.filter(lost, pk=submission_id, status=Status.SCORING).update(
                status=Status.QUEUED, queued_at=now, updated_at=now):
            ids.append(submission_id)
    waiting = Submission.objects.filter(status=Status.QUEUED, queued_at__lt=cutoff)
    for submission_id in waiting.values_list("id", flat=True):
        if Submission.objects.filter(
            pk=submission_id, status=Status.QUEUED, queued_at__lt=cutoff
        ).update(queued_at=now, updated_at=now):
            ids.append(submission_id)
    return ids


def requeue_stuck_rescores() -> list[tuple[int, str]]:
    """Like ``requeue_stuck`` for re-scores: (rescore id, class) pairs to send tokens for."""
    cutoff = stuck_cutoff()
    now = timezone.now()
    lost = abandoned()
    stuck = Rescore.objects.filter(lost, state=Rescore.State.SCORING)
    stuck.filter(attempts__gte=settings.ARENA_SCORING_MAX_RETRIES + 1).update(
        state=Rescore.State.FAILED, finished_at=now,
        error="the re-score kept stopping without a result")
    out = []
    for rescore_id, class_name in stuck.values_list("id", "hardware_class"):
        if Rescore.objects.filter(lost, pk=rescore_id, state=Rescore.State.SCORING).update(
                state=Rescore.State.QUEUED, queued_at=now):
            out.append((rescore_id, class_name))
    waiting = Rescore.objects.filter(state=Rescore.State.QUEUED, queued_at__lt=cutoff)
    for rescore_id, class_name in waiting.values_list("id", "hardware_class"):
        if Rescore.objects.filter(pk=rescore_id, state=Rescore.State.QUEUED,
                                  queued_at__lt=cutoff).update(queued_at=now):
            out.append((rescore_id, class_name))
    return out
