"""A Celery worker joining its hardware class (run from ``celeryd_after_setup``, before it
consumes anything): register the class, calibrate what the class lacks, read the class's queue."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connections

from . import services

log = logging.getLogger("arena.hardware")


def join_class(worker) -> str:
    """Register this worker's class, calibrate its missing tasks, add its queue; the class."""
    try:
        row = services.register()
        if settings.ARENA_CALIBRATE_AT_START:
            done = services.calibrate_missing(row)
            if done:
                log.info("hardware class %s calibrated for %s", row.name, ", ".join(done))
        queue = services.queue_name(row.name)
        worker.app.amqp.queues.select_add(queue)
        log.info("worker %s scores hardware class %s (queue %s; default class %s)",
                 getattr(worker, "hostname", "?"), row.name, queue,
                 services.default_class_name())
        return row.name
    finally:
        # Forked pool processes must not share this process's database connections.
        connections.close_all()
