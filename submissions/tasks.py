"""Celery tasks: check an upload (the validation queue), score the fairest waiting submission of
the worker's hardware class, and re-queue stuck ones (periodic, via beat, on the validation queue
so that it never waits behind a scoring run).

A scoring message carries no submission: it is a token for one run on one hardware class, sent to
that class's queue (``hardware.services.queue_name``) once per queued submission. The worker
claims the fairest waiting submission of its class (``submissions.queue``), so the broker never
decides who goes first. The model runs in the evaluator's locked-down child process; the worker
only reads the artifact and the track before the run and writes the scorecard after it.
"""

from __future__ import annotations

import logging
import socket
import threading
from contextlib import contextmanager

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from competitions.models import Track
from django.conf import settings
from hardware import services as hardware

from . import dispatch, lifecycle, validation
from . import queue as fair_queue
from .models import Rescore, Submission
from .storage import read_artifact

log = logging.getLogger(__name__)


def run_evaluator(submission_id: int, hardware_class: str | None = None) -> dict:
    """Score the stored artifact with the evaluator (raises ``ScoringError`` on platform errors).

    The track's latency limit goes to the evaluator, which ends a model whose first inference is
    far over it at once (failure kind ``too_slow``) instead of timing it for minutes."""
    from evaluator.scoring import score

    submission = Submission.objects.select_related("track").get(pk=submission_id)
    track = submission.track
    if hardware_class:
        # The first run of a task on a class measures the class's reference latency first.
        hardware.reference_latency_ms(hardware_class, track.task, measure=True)
    model_bytes = read_artifact(submission.artifact_path)
    return score(
        model_bytes, track.task, split="all",
        data_dir=settings.ARENA_DATA_DIR, protocol=hardware.latency_protocol(),
        timeout_s=settings.ARENA_SCORING_TIMEOUT_S,
        memory_limit_mb=settings.ARENA_SCORING_MEMORY_MB,
        latency_limit_ms=track.max_latency_ms,
        require_isolation=settings.ARENA_REQUIRE_ISOLATION,
        hidden_set=track.hidden_set or None,
    )


def lacking_hidden_sets() -> list[str]:
    """The imported hidden sets that some track is scored on and this worker's data directory
    does not hold (one manifest read per set)."""
    from evaluator.datasets import hidden_set_present

    names = Track.objects.exclude(hidden_set="").values_list("hidden_set", flat=True).distinct()
    return [name for name in names if not hidden_set_present(name, settings.ARENA_DATA_DIR)]


def check_worker_isolation() -> list[str]:
    """Probe, at a worker's start, that its sandbox children get the isolations this worker
    requires (``ARENA_REQUIRE_ISOLATION``); what is missing (empty: all in place), logged as an
    error that says this worker will refuse every model until it is fixed."""
    from evaluator.sandbox import (
        SandboxLimits,
        isolation_message,
        missing_isolation,
        probe_isolation,
    )

    required = settings.ARENA_REQUIRE_ISOLATION
    if not required:
        log.warning("ARENA_REQUIRE_ISOLATION is off: models may run without a network namespace "
                    "or as the worker's own user (fine for a demo, not for production)")
        return []
    try:
        report = probe_isolation(SandboxLimits(timeout_s=30, require_isolation=required))
    except Exception as exc:  # the probe itself failing is as bad as a missing isolation
        missing = [f"the isolation probe failed: {type(exc).__name__}: {exc}"]
    else:
        missing = missing_isolation(required, report)
    if missing:
        log.error("%s. This worker refuses every model until that is fixed (see docs/platform.md, "
                  "Deployment).", isolation_message(missing))
    else:
        log.info("sandbox isolation in place: %s", ", ".join(required))
    return missing






@shared_task(
    name="submissions.tasks.validate_submission", acks_late=True, reject_on_worker_lost=True,
    soft_time_limit=settings.ARENA_VALIDATION_TASK_TIME_LIMIT_S - 10,
    time_limit=settings.ARENA_VALIDATION_TASK_TIME_LIMIT_S,
)
def validate_submission(submission_id: int) -> str:
    """Check one upload with the evaluator's gate; safe to deliver twice ("not-mine")."""
    try:
        return validation.validate_now(submission_id) or "not-mine"
    except SoftTimeLimitExceeded:
        # Far past the gate's own limit: leave it to beat's sweep, which retries or fails it.
        log.error("validation of submission %s ran out of time", submission_id)
        return "timed-out"


@contextmanager
def heartbeat(model, row_id: int, token: int):
    """Touch the claimed row every ``ARENA_HEARTBEAT_EVERY_S`` while the run lasts (a thread with
    its own database connection), so that a worker killed mid-run is noticed within
    ``ARENA_HEARTBEAT_TIMEOUT_S`` instead of after the run's whole time limit."""
    from django.db import connections

    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.ARENA_HEARTBEAT_EVERY_S):
                try:
                    if not lifecycle.heartbeat(model, row_id, token):
                        return  # the claim was taken over: nothing of ours to keep alive
                except Exception:  # a database blip: the next beat tries again
                    log.warning("heartbeat of %s %s failed", model.__name__, row_id,
                                exc_info=True)
        finally:
            connections.close_all()  # this thread's connections only

    thread = threading.Thread(target=beat, name=f"heartbeat-{row_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)




def worker_class() -> str:
    """This worker's class, its ``HardwareClass`` row created if missing (one query)."""
    name = hardware.worker_class_name()
    if not hardware.HardwareClass.objects.filter(name=name).exists():
        hardware.register(name)
    return name


@shared_task(
    bind=True, name="submissions.tasks.score_next", acks_late=True,
    reject_on_worker_lost=True, soft_time_limit=settings.ARENA_TASK_SOFT_TIME_LIMIT_S,
    time_limit=settings.ARENA_TASK_TIME_LIMIT_S, max_retries=None,
)
def score_next(self, hardware_class: str | None = None) -> str:
    """Score the fairest claimable submission (or pending re-score) of this worker's class.

    Safe to deliver twice: a token that finds nothing to claim does nothing ("idle")."""
    from evaluator.scoring import HiddenSetMissing

    mine = worker_class()
    if hardware_class and hardware_class != mine:
        # Sent to another class's queue and yet here (a misconfigured -Q): hand it back.
        dispatch.send_tokens(hardware_class)
        return "rerouted"
    lacking = lacking_hidden_sets()
    claim = fair_queue.claim_next(mine, lacking)
    if claim is None and lacking and _left_to_others(mine, lacking):
        # Waiting for a worker that has its hidden set: the token goes back for one of them.
        dispatch.send_tokens(mine, countdown=settings.ARENA_SCORING_RETRY_BACKOFF_S)
        return "left-to-another-worker"
    if claim is None:
        default = hardware.default_class_name()
        if hardware_class is None and default and default != mine:
            # A token of the default queue (sent before any class was known): it was meant for
            # the tracks with no class, which the default class scores.
            dispatch.send_tokens(default)
            return "passed-on"
        return "idle"
    try:
        with heartbeat(Rescore if claim.kind == "rescore" else Submission, claim.id, claim.token):
            card = run_evaluator(claim.submission_id, mine)
    except SoftTimeLimitExceeded:
        return _retry(claim, mine, "the scoring run took too long")
    except HiddenSetMissing as exc:  # this worker lacks the track's set: never the student's fault
        log.error("worker %s refused submission %s: %s", socket.gethostname(),
                  claim.submission_id, exc)
        return _retry(claim, mine, "the scoring worker that took it does not have this track's "
                                   "hidden set; a worker that has it will score it")
    except Exception as exc:  # ScoringError and anything unexpected: the platform's fault
        log.exception("scoring submission %s failed", claim.submission_id)
        return _retry(claim, mine, f"{type(exc).__name__}: {exc}")
    if claim.kind == "rescore":
        return lifecycle.record_rescore(claim.id, claim.token, card, mine) or "lost-claim"
    return lifecycle.record_scorecard(claim.id, claim.token, card, mine) or "lost-claim"


def _left_to_others(class_name: str, lacking: list[str]) -> bool:
    """Whether a claimable submission of the class waits for a worker with one of ``lacking``."""
    class_q = fair_queue.class_filter(class_name, hardware.default_class_name())
    return Submission.objects.filter(class_q, fair_queue.claimable_filter(), platform_retries__gt=0,
                                     track__hidden_set__in=lacking).exists()


def _retry(claim: fair_queue.Claim, hardware_class: str, reason: str) -> str:
    model = Rescore if claim.kind == "rescore" else Submission
    retries = model.objects.values_list("platform_retries", flat=True).get(pk=claim.id)
    release = lifecycle.release_rescore if claim.kind == "rescore" else lifecycle.release_for_retry
    if not release(claim.id, claim.token, reason):
        return "failed"
    # The submission waits in the queue until its back-off ends; this token arrives then.
    dispatch.send_tokens(hardware_class, countdown=lifecycle.retry_wait(retries).total_seconds())
    return "retrying"


@shared_task(name="submissions.tasks.requeue_stuck_submissions", acks_late=True)
def requeue_stuck_submissions() -> list[int]:
    """Periodic: re-send validation for uploads left ``received``/``validating`` (or fail them,
    freeing their slots), re-queue submissions stuck in ``scoring`` (worker died) or lost in
    ``queued``, and the same for re-scores; one token each to its class's queue."""
    checks = validation.recover_stuck()
    for submission_id in checks:
        dispatch.send_validation(submission_id)
    ids = lifecycle.requeue_stuck()
    for submission in Submission.objects.filter(pk__in=ids).select_related("track"):
        dispatch.send_tokens(hardware.track_class_name(submission.track))
    rescores = lifecycle.requeue_stuck_rescores()
    for _, class_name in rescores:
        dispatch.send_tokens(class_name)
    if ids or rescores or checks:
        log.warning("re-sent checks of %s; re-queued stuck submissions %s and re-scores %s",
                    checks, ids, [rescore_id for rescore_id, _ in rescores])
    return ids
