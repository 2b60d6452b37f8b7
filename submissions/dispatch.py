"""Publishing work to the broker: scoring tokens to a class's queue, validation to its own queue.

Tasks are sent by name (``send_task``) so that the modules that publish (the upload, the
lifecycle, re-scoring, the validation stage) never import ``submissions.tasks``, which imports
them: the app's modules import one way, tasks at the top. The Celery app is the project's
(``arena.celery`` makes it the default app of every thread).
"""

from __future__ import annotations

import logging

from celery import current_app
from django.conf import settings
from django.db import transaction
from hardware import services as hardware

from .models import Status, Submission

log = logging.getLogger(__name__)

SCORE_NEXT = "submissions.tasks.score_next"
VALIDATE_SUBMISSION = "submissions.tasks.validate_submission"

BROKER_DOWN_NOTICE = (
    "Your upload is saved and counted; the platform's queue could not be reached just now, so it "
    "will be checked and scored as soon as the queue is back (within a few minutes). There is no "
    "need to upload it again."
)


def validation_queue_name() -> str:
    """The validation queue: ``<default queue>.validate`` (``validate`` is never a class name),
    derived from the default queue like the class queues so test stacks stay apart."""
    base = current_app.conf.task_default_queue or settings.CELERY_TASK_DEFAULT_QUEUE
    return f"{base}.validate"


def send_validation(submission_id: int) -> bool:
    """Send the upload's validation task to the validation queue; False when the broker could not
    be reached in ``ARENA_PUBLISH_TIMEOUT_S`` (the submission then says so in ``error`` and
    beat's sweep sends it later). Never raises: the upload is stored whatever the broker does.

    The publish goes through its own connection with short socket timeouts and one quick retry,
    so an unreachable broker (refused, or a host that never answers) costs the request about a
    second instead of kombu's default unbounded wait; the workers' own connections keep theirs.
    """
    try:
        with publishing_connection() as connection:
            current_app.send_task(
                VALIDATE_SUBMISSION, (submission_id,), queue=validation_queue_name(),
                connection=connection, retry=True, retry_policy=settings.ARENA_PUBLISH_RETRY_POLICY)
        return True
    except Exception as exc:  # kombu's OperationalError, socket errors, a full disk (filesystem)
        log.warning("could not send the validation of submission %s (%s: %s); beat's sweep will "
                    "send it", submission_id, type(exc).__name__, exc)
        Submission.objects.filter(pk=submission_id, status=Status.RECEIVED).update(
            error=BROKER_DOWN_NOTICE)
        return False


def publishing_connection():
    """A broker connection for publishing from a web request: short socket timeouts (Redis), so
    an unreachable broker fails a publish in about ``ARENA_PUBLISH_TIMEOUT_S`` instead of kombu's
    unbounded wait. Pass ``retry_policy=settings.ARENA_PUBLISH_RETRY_POLICY`` to ``send_task``."""
    app = current_app
    redis = str(app.conf.broker_url or "").startswith(("redis://", "rediss://"))
    options = settings.ARENA_PUBLISH_TRANSPORT_OPTIONS if redis else {}
    return app.connection_for_write(connect_timeout=settings.ARENA_PUBLISH_TIMEOUT_S,
                                    transport_options=options)


def send_tokens(hardware_class: str | None, count: int = 1, countdown: float | None = None) -> None:
    """``count`` scoring tokens to the queue of ``hardware_class`` (None: no class known yet;
    the deployment's default queue, which every worker reads)."""
    for _ in range(count):
        current_app.send_task(SCORE_NEXT, (hardware_class,),
                              queue=hardware.queue_name(hardware_class), countdown=countdown)


def enqueue(submission_id: int) -> None:
    """Send a scoring token to the queue of the class that scores the submission's track, once
    the current transaction (if any) has committed. The submission waits in the database; the
    worker that takes the token claims the fairest waiting one (``submissions.queue``)."""
    track = Submission.objects.select_related("track").get(pk=submission_id).track
    class_name = hardware.track_class_name(track)
    transaction.on_commit(lambda: send_tokens(class_name))
