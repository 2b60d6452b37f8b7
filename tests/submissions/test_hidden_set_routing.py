"""A track scored on an imported hidden set: a worker without the set refuses the job as a
platform error and leaves it to the workers that have it (the task bodies in this process, the real
evaluator; tests/integration/test_hidden_set_workers.py runs it in real workers)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hardware import services as hardware

from submissions import dispatch, lifecycle, tasks
from submissions.models import Score, Status, Submission
from submissions.queue import claim_next
from submissions.services import submit
from tests.evaluator.model_zoo import GOOD_MODELS

pytestmark = pytest.mark.django_db


@pytest.fixture
def exam_track(competition):
    track = competition.tracks.get(slug="mnist")
    track.hidden_set = "exam"
    track.save()
    return track


def _ready(submission_id: int) -> None:
    Submission.objects.filter(pk=submission_id).update(retry_after=timezone.now()
                                                       - timedelta(seconds=1))


def test_a_refused_job_is_left_to_workers_that_have_the_set(exam_track, make_user):
    hardware.register("class-a")
    submission = submit(exam_track, make_user("ann"), [GOOD_MODELS["mnist_linear"]()])
    first = claim_next("class-a", ["exam"])  # never refused yet: any worker may take it
    assert first is not None and first.id == submission.pk
    assert lifecycle.release_for_retry(first.id, first.token, "no hidden set here")
    _ready(submission.pk)
    assert claim_next("class-a", ["exam"]) is None  # this worker lacks "exam": not again
    assert claim_next("class-a", ["other-set"]).id == submission.pk  # one that has it


def test_a_worker_without_the_set_refuses_it_as_a_platform_error(exam_track, make_user, settings,
                                                                 tmp_path, monkeypatch):
    settings.ARENA_DATA_DIR = tmp_path / "no-exam-here"
    monkeypatch.setenv("ARENA_HARDWARE_CLASS", "class-a")
    hardware.register("class-a")
    monkeypatch.setattr(hardware, "calibrate_missing", lambda row, tasks=None: [])
    monkeypatch.setattr(hardware, "reference_latency_ms", lambda *a, **k: None)
    sent = []
    monkeypatch.setattr(dispatch, "send_tokens", lambda name, count=1, countdown=None:
                        sent.append((name, countdown)))
    assert tasks.lacking_hidden_sets() == ["exam"]
    submission = submit(exam_track, make_user("ann"), [GOOD_MODELS["mnist_linear"]()])
    assert tasks.score_next.run("class-a") == "retrying"
    submission.refresh_from_db()
    assert submission.status == Status.QUEUED and submission.platform_retries == 1
    assert submission.failure_kind == ""  # not the student's fault, no quota spent
    assert "does not have this track's hidden set" in submission.error
    assert not Score.objects.filter(submission=submission).exists()
    assert sent[-1][0] == "class-a"  # its token, after the back-off
    _ready(submission.pk)
    assert tasks.score_next.run("class-a") == "left-to-another-worker"
    assert sent[-1] == ("class-a", settings.ARENA_SCORING_RETRY_BACKOFF_S)
    submission.refresh_from_db()
    assert submission.platform_retries == 1 and submission.status == Status.QUEUED
