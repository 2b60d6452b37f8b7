"""The Celery app: settings come from Django's settings under the ``CELERY_`` prefix."""

import os
import sys
from pathlib import Path

from celery import Celery
from celery.signals import celeryd_after_setup

# `celery --workdir platform -A arena` puts platform/ on sys.path; the repo root holds `submissions`.
_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.append(_REPO_ROOT)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")

app = Celery("arena")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The default app of every thread too (Celery makes it current in this thread only), so that the
# apps' ``current_app`` is this one in request threads and heartbeat threads alike.
app.set_default()


@celeryd_after_setup.connect
def _choose_queues(sender, instance, **kwargs) -> None:
    """A validation worker (ARENA_WORKER_ROLE=validate) reads the validation queue only; a scoring
    worker also reads the queue of its hardware class (platform/hardware/worker.py)."""
    from django.conf import settings

    if settings.ARENA_WORKER_ROLE == "validate":
        from submissions.dispatch import validation_queue_name

        instance.app.amqp.queues.select(validation_queue_name())
        return
    if settings.ARENA_WORKER_ROLE != "score":
        raise ValueError(f"ARENA_WORKER_ROLE={settings.ARENA_WORKER_ROLE!r}: use score or validate")
    from hardware.worker import join_class

    join_class(instance)


@celeryd_after_setup.connect
def _probe_isolation(sender, instance, **kwargs) -> None:
    """A quick probe child at start: a worker whose container denies a required sandbox isolation
    (ARENA_REQUIRE_ISOLATION) says so in its log now, not at the first upload; it then refuses
    every model (a platform error) rather than running one without it."""
    from submissions.tasks import check_worker_isolation

    check_worker_isolation()
