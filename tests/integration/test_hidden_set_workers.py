"""A track scored on an instructor's own hidden set, end to end through real Celery workers: the
set imported with ``python -m evaluator datasets import --name`` (a folder of PNGs), a worker
without it refusing the job as a platform error, and the job retried on a worker that has it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from django.test import Client
from PIL import Image

from evaluator.datasets import load_hidden, load_train, save_prepared
from submissions.models import Score, Status, Submission
from tests.conftest import REPO_ROOT
from tests.evaluator.model_zoo import GOOD_MODELS
from tests.integration import platform_stack as stack
from tests.integration import test_platform_queue as queue_tests
from tests.platform import helpers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

competition, instructor, make_user = helpers.competition, helpers.instructor, helpers.make_user
# The scoring-queue tests' fixtures: Redis queue, suite database, worker environment, validator.
artifacts, redis_queue = queue_tests.artifacts, queue_tests.redis_queue
suite_database, worker_env, validator = (queue_tests.suite_database, queue_tests.worker_env,
                                         queue_tests.validator)
upload, status_of = queue_tests.upload, queue_tests.status_of
EXAM_IMAGES = 600


@pytest.fixture
def exam_data_dir(prepared_mnist_dir, tmp_path):
    """A worker's data directory: the standard MNIST (for the training sample) plus the hidden
    set ``exam``, imported by the command line from a folder of PNG files (real MNIST test
    digits, a set the students do not have)."""
    data = tmp_path / "exam-worker-data"
    train = load_train("mnist", prepared_mnist_dir)
    test = load_hidden("mnist", "all", prepared_mnist_dir)
    save_prepared("mnist", data, train_inputs=train[0], train_labels=train[1],
                  test_inputs=np.asarray(test.inputs), test_labels=np.asarray(test.labels))
    source = tmp_path / "exam-pngs"
    for i in range(EXAM_IMAGES):
        folder = source / str(int(test.labels[i]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(test.inputs[i, 0]), mode="L").save(folder / f"{i:04d}.png")
    result = subprocess.run(
        [sys.executable, "-m", "evaluator", "datasets", "import", "--name", "exam", "--task",
         "mnist", "--from", str(source), "--data-dir", str(data)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "exam (mnist, folder): 600 images" in result.stdout
    return data


@pytest.mark.timeout(300)
def test_a_track_on_an_imported_set_is_retried_on_the_worker_that_has_it(
        competition, make_user, instructor, worker_env, exam_data_dir, tmp_path, validator):
    track = competition.tracks.get(slug="mnist")
    track.hidden_set = "exam"
    track.save()
    quick_retry = {**worker_env, "ARENA_SCORING_RETRY_BACKOFF_S": "1"}
    lacking_log, having_log = tmp_path / "worker-lacking.log", tmp_path / "worker-having.log"
    lacking = stack.start_worker(quick_retry, lacking_log)  # its data dir has no "exam"
    having = None
    try:
        body = upload(make_user("ann"), GOOD_MODELS["mnist_cnn"](), logs=(validator,))
        stack.wait_for(
            lambda: Submission.objects.filter(pk=body["id"], platform_retries__gte=1,
                                              status=Status.QUEUED).exists(),
            120, "the worker without the set to refuse the job", (lacking_log,), every=0.2)
        refused = Submission.objects.get(pk=body["id"])
        assert "does not have this track's hidden set" in refused.error
        assert refused.failure_kind == "" and not Score.objects.filter(submission=refused).exists()
        # It never takes the job again: the retry token goes round, the job waits.
        stack.wait_for(lambda: "left-to-another-worker" in lacking_log.read_text(), 60,
                       "the worker without the set to leave the job to others", (lacking_log,))
        assert Submission.objects.get(pk=body["id"]).platform_retries == 1

        having = stack.start_worker({**quick_retry, "ARENA_DATA_DIR": str(exam_data_dir)},
                                    having_log)
        stack.wait_for(lambda: status_of(body["id"]) in ("scored", "rejected", "failed"), 150,
                       "the worker with the set to score the job", (having_log, lacking_log),
                       every=0.2)
    finally:
        stack.stop(lacking)
        if having is not None:
            stack.stop(having)
    submission = Submission.objects.get(pk=body["id"])
    assert submission.status == Status.SCORED, submission.error
    assert submission.platform_retries == 1 and submission.attempts == 2
    card = Score.objects.get(submission=submission).scorecard
    assert card["hidden_set"]["name"] == "exam" and card["hidden_set"]["public"] is False
    assert card["splits"]["public"]["count"] + card["splits"]["private"]["count"] == EXAM_IMAGES
    assert card["train_gap"]["measured"] and not card["train_gap"]["flagged"]

    page = Client().get(f"/c/{competition.slug}/?track=mnist").content.decode()
    assert "the hidden set &ldquo;exam&rdquo;" in page and "which is not public" in page
    other = Client().get(f"/c/{competition.slug}/?track=tinygpt").content.decode()
    assert "standard Tiny Shakespeare next character test set" in other
    assert "which is public" in other
