"""The Celery app: settings come from Django's settings under the ``CELERY_`` prefix."""

import os
import sys
from pathlib import Path

from celery import Celery

# `celery --workdir platform -A arena` puts platform/ on sys.path; the repo root holds `submissions`.
_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.append(_REPO_ROOT)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")

app = Celery("arena")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
