"""Many workers, as if on many hosts: real Celery worker processes that share only Redis,
PostgreSQL and an S3-compatible object store (moto's server, its own process), each with its own
artifact cache and no access to the uploads' disk; 50 models from 20 students uploaded at once
through the API; one worker SIGKILLed in the middle of a run. Every submission is scored exactly
once and every stored leaderboard equals a full rebuild.

The "hosts" share this machine's loopback (no network namespaces: those need root and a veth
set-up that is not robust under CI); what a second host could not reach, the web's artifact
folder, is a path no worker is given.
"""

from __future__ import annotations

import os
import re
import threading
import uuid

import pytest
from competitions.models import Track
from django.core.cache import cache
from django.db import connection, connections, transaction
from leaderboards.models import LeaderboardEntry
from leaderboards.ranking import rebuild_track

from submissions.models import Score, Status, Submission
from tests.conftest import IN_CI, require
from tests.evaluator.model_zoo import GOOD_MODELS
from tests.integration import object_store
from tests.integration import platform_stack as stack
from tests.platform import helpers
from tests.platform.helpers import client_for, distinct, point_celery_at, restore_celery

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]

competition, instructor, make_user = helpers.competition, helpers.instructor, helpers.make_user
s3_server, s3_storage = object_store.s3_server, object_store.s3_storage
REDIS_URL = os.environ.get("ARENA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
STUDENTS, UPLOADS = 20, 50
FINAL = (Status.SCORED, Status.OVER_LIMIT, Status.REJECTED, Status.FAILED)


@pytest.fixture
def redis_queue():
    require(stack.redis_available(REDIS_URL), f"Redis at {REDIS_URL}")
    queue = f"arena-test-{uuid.uuid4().hex[:10]}"
    old = point_celery_at(REDIS_URL, queue, {"visibility_timeout": 4})
    yield queue
    restore_celery(old)


def stored_rows(track) -> list[tuple]:
    columns = [f.attname for f in LeaderboardEntry._meta.concrete_fields if f.name != "id"]
    return list(LeaderboardEntry.objects.filter(track=track)
                .order_by("split", "category", "position").values_list(*columns))


@pytest.mark.timeout(420)
def test_two_worker_hosts_score_every_upload_exactly_once_through_a_kill(
        competition, make_user, s3_storage, redis_queue, prepared_mnist_dir, settings, tmp_path):
    if IN_CI:
        assert connection.vendor == "postgresql", "CI runs the platform tests on PostgreSQL"
    cache.clear()
    web_disk = tmp_path / "web-artifacts"  # the web's local folder: no worker is given it
    settings.ARENA_ARTIFACT_DIR = web_disk
    track = competition.tracks.get(slug="mnist")
    track.daily_limit = track.total_limit = track.rejected_daily_limit = 10
    track.save()
    base = stack.stack_env(
        DATABASE_URL=stack.database_url_of(connection.settings_dict),
        CELERY_BROKER_URL=REDIS_URL, ARENA_CELERY_QUEUE=redis_queue,
        ARENA_DATA_DIR=prepared_mnist_dir, ARENA_VISIBILITY_TIMEOUT_S=4,
        # A killed run is noticed within seconds (heartbeat every second, 8 s of silence = lost,
        # beat's sweep every 2 s); a live run that misses its beats under load is at worst
        # claimed again, and the lifecycle still writes it once.
        ARENA_HEARTBEAT_EVERY_S=1, ARENA_HEARTBEAT_TIMEOUT_S=8, ARENA_REQUEUE_EVERY_S=2,
        ARENA_CALIBRATE_AT_START="false",
        **object_store.storage_env(s3_storage["endpoint"], s3_storage["bucket"]),
    )

    def host(name: str) -> dict[str, str]:
        """One host's environment: its own var folder and artifact cache, no artifact folder."""
        return {**base, "ARENA_VAR_DIR": str(tmp_path / name),
                "ARENA_ARTIFACT_DIR": str(tmp_path / name / "no-local-artifacts"),
                "ARENA_ARTIFACT_CACHE_DIR": str(tmp_path / name / "artifact-cache")}

    logs = {name: tmp_path / f"{name}.log" for name in ("validator", "host-a", "host-b",
                                                        "host-c")}
    processes = {"validator": stack.start_validator(host("validator"), logs["validator"],
                                                    beat=True),
                 "host-a": stack.start_worker(host("host-a"), logs["host-a"],
                                              hostname="score@host-a"),
                 "host-b": stack.start_worker(host("host-b"), logs["host-b"],
                                              hostname="score@host-b")}
    try:
        students = [make_user(f"student{i:02d}") for i in range(STUDENTS)]
        plan = [(students[i % STUDENTS], i) for i in range(UPLOADS)]
        models = [GOOD_MODELS["mnist_linear"](), GOOD_MODELS["mnist_cnn"]()]
        start = threading.Barrier(STUDENTS)
        ids: list[int] = []
        errors: list[str] = []

        def uploads(student) -> None:
            try:
                start.wait()
                for owner, i in plan:
                    if owner is not student:
                        continue
                    model = distinct(models[i % len(models)], i)
                    response = client_for(student).post(
                        "/api/submissions/", {"file": _file(model), "competition": "course",
                                              "track": "mnist"}, format="multipart")
                    if response.status_code != 201:
                        errors.append(f"{response.status_code}: {response.content[:300]!r}")
                    else:
                        ids.append(response.json()["id"])
            finally:
                connections.close_all()

        threads = [threading.Thread(target=uploads, args=(s,)) for s in students]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == [] and len(ids) == UPLOADS, errors
        assert not web_disk.exists() or not any(web_disk.rglob("*.onnx")), "stored on the web"

        # Kill host-a in the middle of one of its runs (SIGKILL: no ack, no clean shutdown):
        # with two submissions in scoring, each of the two hosts holds one (one run at a time).
        # host-a's cache holding a model first: the kill comes after it read one from the store.
        cache_a = tmp_path / "host-a" / "artifact-cache"
        in_flight = stack.wait_for(
            lambda: any(cache_a.rglob("*.onnx")) and _both_hosts_running(ids), 240,
            "both hosts to be scoring", tuple(logs.values()), every=0.05)
        stack.kill(processes.pop("host-a"))
        # A third host comes up meanwhile (its own empty cache).
        processes["host-c"] = stack.start_worker(host("host-c"), logs["host-c"],
                                                 hostname="score@host-c")
        stack.wait_for(lambda: Submission.objects.filter(pk__in=ids, status__in=FINAL).count()
                       == UPLOADS, 300, "every upload to be scored", tuple(logs.values()),
                       every=0.5)
    finally:
        for process in processes.values():
            stack.stop(process)

    submissions = Submission.objects.filter(pk__in=ids)
    statuses = {s.pk: (s.status, s.error) for s in submissions}
    assert {status for status, _ in statuses.values()} == {Status.SCORED}, statuses
    assert Score.objects.filter(submission_id__in=ids).count() == UPLOADS
    # host-a's run was claimed again after the kill (and written once: below).
    assert any(s.attempts >= 2 for s in submissions if s.pk in in_flight), in_flight
    # Exactly once: the scorecards written (the task's "scored" results) across all hosts.
    written = sum(len(re.findall(r"succeeded in [0-9.]+s: 'scored'", log.read_text()))
                  for name, log in logs.items() if name != "validator" and log.exists())
    assert written == UPLOADS, written
    # Each host read its models through its own cache, never a shared folder.
    for name in ("host-b", "host-c"):
        assert not (tmp_path / name / "no-local-artifacts").exists()
    cached = {name: {p.name for p in (tmp_path / name / "artifact-cache").rglob("*.onnx")}
              for name in ("host-a", "host-b", "host-c")}
    assert cached["host-a"] and cached["host-b"], cached
    # Every stored leaderboard is what a full rebuild writes.
    incremental = stored_rows(track)
    assert len({row[3] for row in incremental if row[1] == "public"}) >= 4  # categories there
    with transaction.atomic():
        rebuild_track(Track.objects.select_for_update().get(pk=track.pk))
    assert stored_rows(track) == incremental
    ranked = LeaderboardEntry.objects.filter(track=track, split="public", category="accuracy")
    assert ranked.count() == STUDENTS


def _file(model: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("model.onnx", model)


def _both_hosts_running(ids) -> list[int] | None:
    running = list(Submission.objects.filter(pk__in=ids, status=Status.SCORING)
                   .values_list("id", flat=True))
    return running if len(running) == 2 else None
