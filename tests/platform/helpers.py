"""Fixtures shared by the platform and submissions tests (imported by their conftest files)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from accounts.services import create_user
from arena.celery import app as celery_app
from competitions.models import Competition
from competitions.services import create_competition
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient


def point_celery_at(broker_url: str, queue: str | None = None,
                    transport_options: dict | None = None) -> dict:
    """Make tasks sent from this process go to ``broker_url`` (and ``queue``); returns the old
    configuration for ``restore_celery``."""
    conf = celery_app.conf
    old = {"broker_url": conf.broker_url, "task_default_queue": conf.task_default_queue,
           "broker_transport_options": conf.broker_transport_options}
    conf.broker_url = broker_url
    if queue:
        conf.task_default_queue = queue
    if transport_options is not None:
        conf.broker_transport_options = transport_options
    _drop_connections()
    return old


def restore_celery(old: dict) -> None:
    for key, value in old.items():
        setattr(celery_app.conf, key, value)
    _drop_connections()


def _drop_connections() -> None:
    # Pools and routing tables are built lazily from the configuration; drop them so the next
    # send uses the new broker and queue.
    celery_app._pool = None
    celery_app.__dict__.pop("amqp", None)


@pytest.fixture(autouse=True)
def isolated_platform(settings, tmp_path):
    """Artifacts in a tmp dir, in-process validation, an in-memory broker for tasks sent from the
    test process, no throttle counts left over from another test."""
    settings.ARENA_ARTIFACT_DIR = tmp_path / "artifacts"
    # The same gate in this process (fast); the integration tests run it in its child process.
    settings.ARENA_VALIDATE_ISOLATED = False
    # Uploads checked in the request, as the web tier's tests expect (production sends them to
    # the validation queue; tests/submissions and tests/integration cover that path).
    settings.ARENA_VALIDATE_INLINE = True
    old = point_celery_at("memory://")
    cache.clear()
    yield
    restore_celery(old)


@pytest.fixture
def make_user(db):
    def make(name: str, role: str = "student"):
        user, token = create_user(name, role)
        user.api_token = token
        return user
    return make


@pytest.fixture
def instructor(make_user):
    return make_user("teacher", "instructor")


@pytest.fixture
def competition(instructor):
    return create_competition(
        "course", "Course competition", ["mnist", "tinygpt"], organizers=[instructor],
        daily_limit=3, total_limit=10, rejected_daily_limit=2, accuracy_floor=0.5,
    )


@pytest.fixture
def unlisted(instructor):
    return create_competition(
        "secret", "Invitation only", ["mnist"], organizers=[instructor],
        visibility=Competition.Visibility.UNLISTED,
    )


@pytest.fixture
def closed(instructor):
    start = timezone.now() - timedelta(days=10)
    return create_competition("over", "Finished", ["mnist"], organizers=[instructor],
                              start=start, deadline=start + timedelta(days=5))


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {user.api_token}")
    return client


# The reference latency the test scorecards' speed index is taken against (ms): a card with the
# default 2 ms latency has speed index 1.0.
REFERENCE_MS = 2.0


class SentTasks:
    """Stands in for the Celery app in ``submissions.dispatch``: records each scoring token sent
    as ``(args, queue, countdown)`` (or ``(args, queue)``) instead of publishing it."""

    def __init__(self, sent: list, *, countdown: bool = True) -> None:
        self.sent, self.countdown = sent, countdown

    def send_task(self, name: str, args: tuple, queue: str, countdown: float | None = None,
                  **options) -> None:
        assert name == "submissions.tasks.score_next", name
        self.sent.append((args, queue, countdown) if self.countdown else (args, queue))


def scorecard(accuracy: float = 0.9, latency_ms: float = 2.0, size_bytes: int = 30_000,
              private_accuracy: float | None = None, **extra) -> dict:
    """An evaluator-shaped scorecard for tests of the platform's own logic.

    Its speed index is ``REFERENCE_MS / latency_ms`` (a slower model is slower against the
    reference too); pass ``speed_index``, ``speed_index_ci``, ``warnings``, ``numerics`` or
    ``provenance`` to set them.
    """
    private = accuracy if private_accuracy is None else private_accuracy
    card = {
        "valid": True, "error": None, "failure_kind": None, "accuracy": (accuracy + private) / 2,
        "bits_per_char": None, "latency_ms": latency_ms, "latency_p90_ms": latency_ms * 1.1,
        "latency_mean_ms": latency_ms, "speed_index": REFERENCE_MS / latency_ms,
        "size_bytes": size_bytes, "raw_bytes": size_bytes * 2, "params": 7850,
        "nonzero_params": 7850, "peak_memory_mb": 12.0, "throughput": 1000.0,
        "speed_index_ci": None, "latency_ci_ms": None, "numerics": None, "warnings": [],
        "splits": {"public": {"accuracy": accuracy, "bits_per_char": None, "count": 5000},
                   "private": {"accuracy": private, "bits_per_char": None, "count": 5000}},
    }
    card.update(extra)
    return card


def distinct(model: bytes, n: int) -> bytes:
    """The same model with another doc string: other bytes, the same behaviour. Uploads of bytes
    identical to an earlier upload of the same student return that submission and use no quota,
    so tests that count uploads send distinct files."""
    import onnx

    proto = onnx.load_from_string(model)
    proto.doc_string = f"variant {n}"
    return proto.SerializeToString()
