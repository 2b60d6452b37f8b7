"""Which hardware class scores what, the class's Celery queue, and a worker's start-up.

Routing rule: a track is scored by workers of ``track.hardware_class``; a track with no class by
workers of the *default* class, the first class any worker ever reported (the oldest
``HardwareClass`` row), so a platform with one kind of machine (``make demo``) needs no setting.
"""

from __future__ import annotations

import logging
import re

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import HardwareClass

log = logging.getLogger("arena.hardware")
CLASS_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")


def worker_class_name() -> str:
    """This process's hardware class (``ARENA_HARDWARE_CLASS`` if set, else from its CPU)."""
    from evaluator.hardware import hardware_class

    return hardware_class()


def check_class_name(name: str) -> str:
    if name == "validate":  # "<queue>.validate" is the validation queue
        raise ValueError("'validate' is reserved (it names the validation queue)")
    if not CLASS_NAME.match(name or ""):
        raise ValueError(f"{name!r} is not a hardware class name: use 1 to 64 of a-z, 0-9, _ "
                         "and - (it names a Celery queue)")
    return name


def default_class_name() -> str | None:
    """The class that scores tracks with no class: the first one any worker reported."""
    return HardwareClass.objects.order_by("first_seen", "id").values_list(
        "name", flat=True).first()


def effective_class(track_class: str, default: str | None) -> str | None:
    """The class that scores a track whose own class is ``track_class`` (plain rule)."""
    return track_class or default


def routes_to(track_class: str, worker_class: str, default: str | None) -> bool:
    """Does a worker of ``worker_class`` score a track of ``track_class``? (plain rule)"""
    return effective_class(track_class, default) == worker_class


def latency_protocol():
    """The latency protocol this deployment measures with (``ARENA_LATENCY_PROTOCOL``): the
    standard one ranks; ``quick`` is for demos and tests."""
    from evaluator.latency import LatencyProtocol

    if settings.ARENA_LATENCY_PROTOCOL == "quick":
        return LatencyProtocol.quick()
    return LatencyProtocol.standard()


def track_class_name(track) -> str | None:
    """The class that scores ``track`` now (None: no worker has started yet)."""
    return effective_class(track.hardware_class, None) or default_class_name()


def queue_name(class_name: str | None) -> str:
    """The Celery queue of a class; the deployment's default queue (every worker reads it) when
    no class is known yet. Derived from the default queue so test stacks stay apart."""
    base = current_app.conf.task_default_queue or settings.CELERY_TASK_DEFAULT_QUEUE
    return f"{base}.{class_name}" if class_name else base


def register(name: str | None = None) -> HardwareClass:
    """Create or update this machine's class row (first_seen stays; last_seen moves)."""
    from evaluator import hardware

    name = check_class_name(name or worker_class_name())
    facts = {"cpu_features": hardware.cpu_features(), "cpu_count": hardware.cpu_count(),
             "cpu_model": (hardware.cpu_model() or "")[:200]}
    now = timezone.now()
    row, created = HardwareClass.objects.get_or_create(
        name=name, defaults={**facts, "first_seen": now, "last_seen": now})
    if not created:
        HardwareClass.objects.filter(pk=row.pk).update(last_seen=now, **facts)
        row.refresh_from_db()
    return row


def tasks_of_class(name: str) -> set[str]:
    """The tasks of the tracks this class scores now."""
    from competitions.models import Track

    tracks = Track.objects.filter(hardware_class=name)
    if default_class_name() == name:
        tracks = tracks | Track.objects.filter(hardware_class="")
    return set(tracks.values_list("task", flat=True))


def calibrate(row: HardwareClass, task: str, *, force: bool = False) -> float | None:
    """Measure the task's reference latency on this machine and store it on the class row
    (unless another worker of the class stored one meanwhile, or ``force``)."""
    from evaluator.calibration import calibrate_reference

    record = calibrate_reference(task, latency_protocol())
    reference = record.get("reference_latency_ms")
    if not reference or reference <= 0:
        log.warning("calibration of %s on %s gave no reference latency: %s", task, row.name,
                    record)
        return None
    with transaction.atomic():
        locked = HardwareClass.objects.select_for_update().get(pk=row.pk)
        if task in locked.calibration and not force:
            return locked.reference_latency_ms(task)
        locked.calibration = {**locked.calibration, task: float(reference)}
        locked.calibration_details = {**locked.calibration_details, task: record}
        locked.save(update_fields=["calibration", "calibration_details"])
    row.refresh_from_db()
    log.info("calibrated %s on %s: reference latency %.4f ms", task, row.name, reference)
    return float(reference)


def calibrate_missing(row: HardwareClass, tasks: set[str] | None = None) -> list[str]:
    """Calibrate the tasks (default: those of the class's tracks) the class lacks; the ones done.
    A calibration that cannot run leaves the task raw-latency only, never stops the worker."""
    done = []
    for task in sorted(tasks if tasks is not None else tasks_of_class(row.name)):
        if task in (row.calibration or {}):
            continue
        try:
            if calibrate(row, task) is not None:
                done.append(task)
        except Exception:  # the worker still scores (on raw latency) without a calibration
            log.exception("could not calibrate %s on hardware class %s", task, row.name)
    return done


def reference_latency_ms(class_name: str, task: str, *, measure: bool = False) -> float | None:
    """The class's calibration for ``task``; with ``measure`` (a worker of that class), calibrate
    it first when it is missing."""
    row = HardwareClass.objects.filter(name=class_name).first()
    if row is None:
        return None
    if measure and task not in (row.calibration or {}):
        calibrate_missing(row, {task})
    return row.reference_latency_ms(task)
