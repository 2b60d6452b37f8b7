"""Hardware classes and the fair queue for real: Celery worker processes that name their class
(``ARENA_HARDWARE_CLASS``), Redis as broker, the suite's database (PostgreSQL under CI), uploads
through the API, the real evaluator on the real MNIST with the quick latency protocol."""

from __future__ import annotations

import pytest
from competitions.services import create_competition
from hardware.models import HardwareClass
from leaderboards.models import LeaderboardEntry

from submissions.models import Rescore, Score, Submission
from tests.evaluator.model_zoo import GOOD_MODELS
from tests.integration import platform_stack as stack
from tests.integration import test_platform_queue as platform_queue
from tests.platform import helpers
from tests.platform.helpers import client_for, distinct

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

competition, instructor, make_user = helpers.competition, helpers.instructor, helpers.make_user
# The Redis queue, database and worker environment of the platform queue tests.
artifacts, suite_database = platform_queue.artifacts, platform_queue.suite_database
redis_queue, worker_env = platform_queue.redis_queue, platform_queue.worker_env


@pytest.fixture(autouse=True)
def validator(worker_env, tmp_path):
    """Every test here has its uploads checked by a real validation worker first."""
    process = stack.start_validator(worker_env, tmp_path / "validator.log")
    yield
    stack.stop(process)


CLASS_A, CLASS_B = "h3a-test-a", "h3a-test-b"


_UPLOADS = iter(range(1_000_000))


def upload(user, competition_slug: str = "course") -> int:
    from django.core.files.uploadedfile import SimpleUploadedFile

    # Distinct bytes each time: an identical upload would return the earlier submission.
    model = distinct(GOOD_MODELS["mnist_linear"](), next(_UPLOADS))
    data = {"file": SimpleUploadedFile("model.onnx", model),
            "competition": competition_slug, "track": "mnist"}
    response = client_for(user).post("/api/submissions/", data, format="multipart")
    assert response.status_code == 201, response.content
    submission_id = response.json()["id"]
    # Checked by the validation worker, then queued (the fair order starts from here).
    stack.wait_for(lambda: status_of(submission_id) != "received" and
                   status_of(submission_id) != "validating", 60, "the upload's check",
                   every=0.05)
    assert status_of(submission_id) in ("queued", "scoring", "scored"), status_of(submission_id)
    return submission_id


def status_of(submission_id: int) -> str:
    return Submission.objects.values_list("status", flat=True).get(pk=submission_id)


def start(env: dict, class_name: str, log, **extra):
    """A worker of ``class_name``; returns once it has registered its class."""
    worker = stack.start_worker({**env, "ARENA_HARDWARE_CLASS": class_name, **extra}, log)
    stack.wait_for(lambda: HardwareClass.objects.filter(name=class_name).exists(), 60,
                   f"the {class_name} worker to register its class", (log,), every=0.2)
    return worker


def scored_on(submission_id: int) -> str | None:
    return Score.objects.filter(submission_id=submission_id).values_list(
        "hardware_class", flat=True).first()


@pytest.fixture
def mnist(competition):
    track = competition.tracks.get(slug="mnist")
    track.daily_limit = 10
    track.save()
    return track


@pytest.mark.timeout(240)
def test_a_worker_does_not_take_another_classs_track(mnist, instructor, make_user, worker_env,
                                                     tmp_path):
    other = create_competition("other", "Other", ["mnist"], organizers=[instructor])
    other.tracks.filter(slug="mnist").update(hardware_class=CLASS_B)
    logs = tmp_path / "worker-a.log", tmp_path / "worker-b.log"
    worker_a = start(worker_env, CLASS_A, logs[0])  # the first class: the default one
    worker_b = None
    try:
        ann = make_user("ann")
        on_b = upload(ann, "other")
        on_a = upload(ann, "course")  # after the class-b upload: a FIFO broker would block it
        stack.wait_for(lambda: status_of(on_a) in ("scored", "rejected", "failed"), 120,
                       "the class-a worker to score the default-class track", logs, every=0.2)
        assert (status_of(on_a), scored_on(on_a)) == ("scored", CLASS_A)
        assert status_of(on_b) == "queued"  # class a's idle worker never touched it
        assert Submission.objects.get(pk=on_b).attempts == 0
        worker_b = start(worker_env, CLASS_B, logs[1])
        stack.wait_for(lambda: status_of(on_b) in ("scored", "rejected", "failed"), 120,
                       "the class-b worker to score its track", logs, every=0.2)
        assert (status_of(on_b), scored_on(on_b)) == ("scored", CLASS_B)
        # Both classes calibrated the task (one at start, one at its first run of it): the
        # scores carry a normalized latency from their own class's reference.
        for submission_id, name in ((on_a, CLASS_A), (on_b, CLASS_B)):
            score = Score.objects.get(submission_id=submission_id)
            reference = HardwareClass.objects.get(name=name).calibration["mnist"]
            assert score.normalized_latency_ms == pytest.approx(reference / score.speed_index)
    finally:
        stack.stop(worker_a)
        if worker_b is not None:
            stack.stop(worker_b)


@pytest.mark.timeout(240)
def test_another_students_first_upload_is_scored_second(mnist, make_user, worker_env,
                                                        tmp_path):
    ann, bob = make_user("ann"), make_user("bob")
    # Queued before any worker exists: the tokens go to the default queue.
    anns = [upload(ann) for _ in range(5)]
    bobs = upload(bob)
    log = tmp_path / "worker.log"
    worker = start(worker_env, CLASS_A, log)
    try:
        def claimed():
            rows = Submission.objects.filter(scoring_started_at__isnull=False)
            return list(rows.order_by("scoring_started_at").values_list("id", flat=True)) \
                if rows.count() >= 3 else None

        order = stack.wait_for(claimed, 180, "three claims", (log,), every=0.1)
        assert order[:3] == [anns[0], bobs, anns[1]], (order, anns, bobs)
        stack.wait_for(lambda: status_of(bobs) == "scored", 60, "bob's score", (log,))
    finally:
        stack.stop(worker)


@pytest.mark.timeout(300)
def test_rescore_track_moves_a_track_to_another_class(mnist, make_user, worker_env, tmp_path):
    logs = tmp_path / "worker-a.log", tmp_path / "worker-b.log"
    worker_a = start(worker_env, CLASS_A, logs[0])
    worker_b = None
    try:
        ids = [upload(make_user("ann")), upload(make_user("bob"))]
        stack.wait_for(lambda: all(scored_on(i) == CLASS_A for i in ids), 120,
                       "class a to score both", logs, every=0.2)
        worker_b = start(worker_env, CLASS_B, logs[1])
        out = stack.manage(worker_env, "rescore_track", "course", "mnist", "--hardware-class",
                           CLASS_B)
        assert f"now scored on {CLASS_B} (was {CLASS_A})" in out, out
        assert "2 scored submission(s) queued" in out, out
        # The working scores stay on the leaderboard until the new ones land.
        board = LeaderboardEntry.objects.filter(track=mnist, split="public", category="accuracy")
        assert sorted(board.values_list("submission_id", flat=True)) == sorted(ids)
        assert all(status_of(i) == "scored" for i in ids)
        stack.wait_for(lambda: all(scored_on(i) == CLASS_B for i in ids), 180,
                       "class b to re-score both", logs, every=0.2)
        # Exactly once each, nothing lost.
        assert Rescore.objects.filter(state="done").count() == 2
        assert Rescore.objects.count() == 2 and Score.objects.count() == 2
        assert sorted(board.values_list("submission_id", flat=True)) == sorted(ids)
        again = stack.manage(worker_env, "rescore_track", "course", "mnist", "--hardware-class",
                             CLASS_B)
        assert "0 scored submission(s) queued" in again and "2 already scored there" in again
        assert Rescore.objects.count() == 2
    finally:
        stack.stop(worker_a)
        if worker_b is not None:
            stack.stop(worker_b)
