"""The project's start-up: the folders the embedded default writes to, created when Django starts
(every process, web, worker, beat and manage.py, calls ``django.setup()`` before it opens the
database or the broker), never when the settings module is imported."""

from __future__ import annotations

from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


def runtime_folders() -> list[Path]:
    """The folders this configuration needs before its first database or broker connection."""
    folders = [Path(settings.STATIC_ROOT)]  # whitenoise warns on every request otherwise
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3") and str(database["NAME"]) != ":memory:":
        folders.append(Path(database["NAME"]).parent)
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        # kombu's filesystem transport neither creates its message folders nor its parents.
        folders += [Path(options[key]) for key in ("data_folder_in", "data_folder_out",
                                                   "control_folder") if options.get(key)]
    return folders


def ensure_runtime_folders() -> None:
    for folder in runtime_folders():
        folder.mkdir(parents=True, exist_ok=True)


class ArenaConfig(AppConfig):
    name = "arena"
    verbose_name = "Arena project"

    def ready(self) -> None:
        ensure_runtime_folders()
