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


@celeryd_after_setup.connect
def _join_hardware_class(sender, instance, **kwargs) -> None:
    """Each worker reads the queue of its hardware class too (platform/hardware/worker.py)."""
    from hardware.worker import join_class

    join_class(instance)
