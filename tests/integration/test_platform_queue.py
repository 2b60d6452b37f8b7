"""The scoring queue for real: Redis as broker, Celery worker processes, the suite's database
(PostgreSQL under CI), uploads through the API, the real evaluator on the real MNIST."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
from django.core.cache import cache
from django.db import connection, connections

from submissions.models import Score, Status, Submission
from submissions.quotas import QuotaExceeded
from submissions.services import submit
from tests.conftest import IN_CI, require
from tests.evaluator.model_zoo import BAD_MODELS, GOOD_MODELS
from tests.integration import platform_stack as stack
from tests.platform import helpers
from tests.platform.helpers import client_for, distinct, point_celery_at, restore_celery

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Fixtures shared with the platform unit tests.
competition, instructor, make_user = helpers.competition, helpers.instructor, helpers.make_user
REDIS_URL = os.environ.get("ARENA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
VISIBILITY_TIMEOUT_S = 4


@pytest.fixture(autouse=True)
def artifacts(settings, tmp_path):
    settings.ARENA_ARTIFACT_DIR = tmp_path / "artifacts"
    cache.clear()


@pytest.fixture
def suite_database():
    """The suite's database; under CI (DATABASE_URL set by .ci/run) it must be PostgreSQL."""
    if IN_CI:
        assert connection.vendor == "postgresql", "CI runs the platform tests on PostgreSQL"
    return stack.database_url_of(connection.settings_dict)


@pytest.fixture
def redis_queue():
    """Tasks sent from this test go to Redis, on a queue no other process uses."""
    require(stack.redis_available(REDIS_URL), f"Redis at {REDIS_URL}")
    queue = f"arena-test-{uuid.uuid4().hex[:10]}"
    old = point_celery_at(REDIS_URL, queue, {"visibility_timeout": VISIBILITY_TIMEOUT_S})
    yield queue
    restore_celery(old)
    import redis

    redis.Redis.from_url(REDIS_URL).delete(queue)


@pytest.fixture
def worker_env(suite_database, redis_queue, prepared_mnist_dir, settings, tmp_path):
    return stack.stack_env(
        DATABASE_URL=suite_database, CELERY_BROKER_URL=REDIS_URL, ARENA_CELERY_QUEUE=redis_queue,
        ARENA_DATA_DIR=prepared_mnist_dir, ARENA_ARTIFACT_DIR=settings.ARENA_ARTIFACT_DIR,
        ARENA_VAR_DIR=tmp_path / "var", ARENA_VISIBILITY_TIMEOUT_S=VISIBILITY_TIMEOUT_S,
    )


@pytest.fixture
def validator(worker_env, tmp_path):
    """A worker of the validation queue: uploads are checked there, not in the request."""
    log = tmp_path / "validator.log"
    process = stack.start_validator(worker_env, log)
    yield log
    stack.stop(process)


def upload(user, model: bytes, checked: tuple[str, ...] = ("queued", "rejected"),
           logs: tuple = ()):
    """Upload through the API (answered ``received``); the body once the validation worker has
    moved it to one of ``checked`` (queued or later: a scoring worker may be quicker)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {"file": SimpleUploadedFile("model.onnx", model), "competition": "course",
            "track": "mnist"}
    response = client_for(user).post("/api/submissions/", data, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "received", body
    later = {"queued": ("queued", "scoring", "scored", "over_limit", "failed")}
    wanted = {status for name in checked for status in later.get(name, (name,))}
    stack.wait_for(lambda: status_of(body["id"]) in wanted, 90, "the upload's check", logs,
                   every=0.05)
    return body


def status_of(submission_id: int) -> str:
    return Submission.objects.values_list("status", flat=True).get(pk=submission_id)


@pytest.mark.timeout(120)
def test_upload_is_scored_by_a_worker_and_ranked(competition, make_user, worker_env, tmp_path,
                                                 validator):
    log = tmp_path / "worker.log"
    worker = stack.start_worker(worker_env, log)
    try:
        ann = make_user("ann")
        body = upload(ann, GOOD_MODELS["mnist_cnn"](), logs=(validator,))
        stack.wait_for(lambda: status_of(body["id"]) in ("scored", "rejected", "failed"), 90,
                       "the worker to score the upload", (log,), every=0.2)
        assert status_of(body["id"]) == "scored", Submission.objects.get(pk=body["id"]).error
        detail = client_for(ann).get(f"/api/submissions/{body['id']}/").json()
        assert detail["scores"]["splits"]["public"]["accuracy"] is not None
        assert detail["scores"]["latency_ms"] > 0
        rows = client_for().get("/api/competitions/course/leaderboard/",
                                {"track": "mnist"}).json()["rows"]
        assert [(r["rank"], r["username"], r["submission_id"]) for r in rows] == [
            (1, "ann", body["id"])]
    finally:
        stack.stop(worker)


@pytest.mark.timeout(360)
def test_a_worker_killed_while_scoring_is_retried_within_two_minutes(competition, make_user,
                                                                    worker_env, tmp_path,
                                                                    validator):
    """SIGKILL mid-scoring with the production figures (heartbeat every 10 s, silent 60 s = lost,
    beat's sweep every 30 s, Redis visibility timeout 120 s): another worker claims the run
    again within two minutes and the score is written exactly once."""
    production = {**worker_env, "ARENA_VISIBILITY_TIMEOUT_S": "120",
                  "ARENA_HEARTBEAT_EVERY_S": "10", "ARENA_HEARTBEAT_TIMEOUT_S": "60",
                  "ARENA_REQUEUE_EVERY_S": "30"}
    first_log, second_log = tmp_path / "worker-1.log", tmp_path / "worker-2.log"
    sweeper_log = tmp_path / "sweeper.log"
    first = stack.start_worker(production, first_log)
    try:
        body = upload(make_user("ann"), GOOD_MODELS["mnist_cnn"](), logs=(validator,))
        stack.wait_for(lambda: status_of(body["id"]) == "scoring", 90,
                       "the first worker to start scoring", (first_log,), every=0.02)
    finally:
        stack.kill(first)  # SIGKILL: no clean shutdown, the message is never acknowledged
    killed = time.monotonic()
    assert status_of(body["id"]) == "scoring", "the kill came too late to test anything"
    assert not Score.objects.filter(submission_id=body["id"]).exists()

    second = stack.start_worker(production, second_log)
    sweeper = stack.start_validator(production, sweeper_log, beat=True)
    logs = (second_log, sweeper_log)
    try:
        stack.wait_for(lambda: Submission.objects.get(pk=body["id"]).attempts >= 2, 150,
                       "another worker to claim the lost run", logs, every=0.2)
        retried_after = time.monotonic() - killed
        print(f"lost run claimed again {retried_after:.0f} s after the SIGKILL")
        assert retried_after < 120, retried_after
        stack.wait_for(lambda: status_of(body["id"]) == "scored", 120,
                       "the second worker to score the submission", logs, every=0.2)
    finally:
        stack.stop(second)
        stack.stop(sweeper)
    submission = Submission.objects.get(pk=body["id"])
    assert Score.objects.filter(submission=submission).count() == 1
    assert submission.attempts == 2 and submission.platform_retries == 0


@pytest.mark.timeout(120)
def test_concurrent_uploads_stop_exactly_at_the_quota(competition, make_user, settings,
                                                      suite_database):
    """Eight uploads at once by one student against a limit of three, each thread with its
    own database connection: exactly three get in."""
    point = point_celery_at("memory://")
    try:
        track = competition.tracks.get(slug="mnist")
        # Room in the rejected cap: the uploads stay unchecked here, and each unchecked upload
        # holds a rejected slot too (the next test).
        track.rejected_daily_limit = 20
        track.save()
        ann = make_user("ann")
        model = GOOD_MODELS["mnist_linear"]()
        start = threading.Barrier(8)
        outcomes: list[str] = []

        def one_upload(index: int):
            try:
                start.wait()
                submit(track, ann, [distinct(model, index)])  # an identical one would return
                outcomes.append("accepted")
            except QuotaExceeded:
                outcomes.append("refused")
            finally:
                connections.close_all()

        threads = [threading.Thread(target=one_upload, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
    finally:
        restore_celery(point)
    assert sorted(outcomes) == ["accepted"] * 3 + ["refused"] * 5
    # Accepted means stored and reserved: each waits for its check (no validation worker here).
    assert set(Submission.objects.filter(user=ann).values_list("status", flat=True)) == {
        Status.RECEIVED}
    counted = Submission.objects.filter(user=ann, track=track).exclude(status=Status.FAILED)
    assert counted.count() == 3


@pytest.mark.timeout(180)
def test_an_endless_model_is_rejected_as_too_slow_in_seconds(competition, make_user, worker_env,
                                                             tmp_path, validator):
    """The worker passes the track's latency limit to the evaluator: an endless Loop is answered
    at its first inference, not at the 600 s scoring timeout, and the student reads why."""
    log = tmp_path / "worker.log"
    worker = stack.start_worker({**worker_env, "ARENA_SCORING_TIMEOUT_S": "600"}, log)
    try:
        ann = make_user("ann")
        body = upload(ann, BAD_MODELS["endless_loop"](), logs=(validator,))
        stack.wait_for(lambda: status_of(body["id"]) == "scoring", 90, "the claim", (log,),
                       every=0.05)
        claimed = time.monotonic()
        stack.wait_for(lambda: status_of(body["id"]) != "scoring", 60, "the verdict", (log,),
                       every=0.1)
        wall = time.monotonic() - claimed
        print(f"endless model: rejected {wall:.1f} s after its claim")  # shown with -s
        detail = client_for(ann).get(f"/api/submissions/{body['id']}/").json()
        assert (detail["status"], detail["failure_kind"]) == ("rejected", "too_slow"), detail
        assert "100 ms" in detail["error"], detail["error"]  # the track's limit, in words
        assert wall < 30, f"the endless model held the worker for {wall:.1f} s"
    finally:
        stack.stop(worker)


@pytest.mark.timeout(180)
def test_concurrent_invalid_uploads_stop_exactly_at_the_rejected_cap(competition, make_user,
                                                                     settings, suite_database):
    """25 invalid uploads by one student from 20 threads against a rejected cap of 20 (and room
    in the daily quota): exactly 20 get in, because an upload holds a rejected slot from its
    reservation until its check is done; all 20 end rejected and the cap is then full."""
    from submissions import validation

    settings.ARENA_VALIDATE_ISOLATED = False  # the same gate in this process (checked below)
    track = competition.tracks.get(slug="mnist")
    track.daily_limit, track.total_limit, track.rejected_daily_limit = 100, 100, 20
    track.save()
    ann = make_user("ann")
    garbage = BAD_MODELS["garbage_bytes"]()
    point = point_celery_at("memory://")
    outcomes: list[str] = []
    try:
        start = threading.Barrier(20)
        lock = threading.Lock()
        remaining = iter(range(25))

        def uploads():
            try:
                start.wait()
                while True:
                    with lock:
                        if (index := next(remaining, None)) is None:
                            return
                    try:
                        # Distinct bytes: an identical upload returns the earlier submission.
                        submit(track, ann, [garbage + b"%d" % index])
                        outcomes.append("accepted")
                    except QuotaExceeded as exc:
                        outcomes.append("refused")
                        assert "still being checked" in str(exc) or "rejected" in str(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=uploads) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert sorted(outcomes) == ["accepted"] * 20 + ["refused"] * 5
        ids = list(Submission.objects.filter(user=ann).values_list("id", flat=True))
        assert len(ids) == 20
        for submission_id in ids:  # what the validation workers do
            assert validation.validate_now(submission_id) == Status.REJECTED
        with pytest.raises(QuotaExceeded, match="20 rejected uploads"):
            submit(track, ann, [garbage])
        # A valid file is refused too: the cap is on the student, for 24 hours.
        with pytest.raises(QuotaExceeded, match="the limit is 20"):
            submit(track, ann, [GOOD_MODELS["mnist_linear"]()])
    finally:
        restore_celery(point)
    assert Submission.objects.filter(user=ann, status=Status.REJECTED).count() == 20
