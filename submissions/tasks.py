"""Celery tasks: score one submission (idempotent) and re-queue stuck ones (periodic, via beat).

The model runs in the evaluator's locked-down child process. The worker only reads the artifact
and the track's task before the run and writes the scorecard after it.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from . import lifecycle
from .models import Submission
from .storage import read_artifact

log = logging.getLogger(__name__)


def _latency_protocol():
    from evaluator.scoring import LatencyProtocol

    if settings.ARENA_LATENCY_PROTOCOL == "quick":
        return LatencyProtocol.quick()
    return LatencyProtocol.standard()


def run_evaluator(submission_id: int) -> dict:
    """Score the stored artifact with the evaluator (raises ``ScoringError`` on platform errors)."""
    from evaluator.scoring import score

    submission = Submission.objects.select_related("track").get(pk=submission_id)
    model_bytes = read_artifact(submission.artifact_path)
    return score(
        model_bytes, submission.track.task, split="all",
        data_dir=settings.ARENA_DATA_DIR, protocol=_latency_protocol(),
        timeout_s=settings.ARENA_SCORING_TIMEOUT_S,
        memory_limit_mb=settings.ARENA_SCORING_MEMORY_MB,
    )


@shared_task(
    bind=True, name="submissions.tasks.score_submission", acks_late=True,
    reject_on_worker_lost=True, soft_time_limit=settings.ARENA_TASK_SOFT_TIME_LIMIT_S,
    time_limit=settings.ARENA_TASK_TIME_LIMIT_S, max_retries=None,
)
def score_submission(self, submission_id: int) -> str:
    """Score a queued submission once; a second delivery of the same message does nothing."""
    token = lifecycle.claim(submission_id)
    if token is None:
        return "skipped"
    try:
        card = run_evaluator(submission_id)
    except SoftTimeLimitExceeded:
        return _retry(self, submission_id, token, "the scoring run took too long")
    except Exception as exc:  # ScoringError and anything unexpected: the platform's fault
        log.exception("scoring submission %s failed", submission_id)
        return _retry(self, submission_id, token, f"{type(exc).__name__}: {exc}")
    return lifecycle.record_scorecard(submission_id, token, card) or "lost-claim"


def _retry(task, submission_id: int, token: int, reason: str) -> str:
    if not lifecycle.release_for_retry(submission_id, token, reason):
        return "failed"
    retries = Submission.objects.values_list("platform_retries", flat=True).get(pk=submission_id)
    countdown = settings.ARENA_SCORING_RETRY_BACKOFF_S * 2 ** (retries - 1)
    task.apply_async((submission_id,), countdown=countdown)
    return "retrying"


@shared_task(name="submissions.tasks.requeue_stuck_submissions", acks_late=True)
def requeue_stuck_submissions() -> list[int]:
    """Periodic: re-queue submissions stuck in ``scoring`` (worker died) or lost in ``queued``."""
    ids = lifecycle.requeue_stuck()
    for submission_id in ids:
        score_submission.delay(submission_id)
    if ids:
        log.warning("re-queued stuck submissions %s", ids)
    return ids
