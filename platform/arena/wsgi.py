"""WSGI entry point (gunicorn arena.wsgi --pythonpath platform)."""

import os
import sys
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.append(_REPO_ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
