from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="notifications.tasks.send_result_emails", acks_late=True)
def send_result_emails() -> int:
    """Periodic (beat): e-mail students the results of their uploads, each once."""
    return services.send_result_emails()
