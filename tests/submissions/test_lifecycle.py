"""The scoring transitions: claims, exactly-once writes, retries, re-queuing stuck submissions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from leaderboards.models import LeaderboardEntry

from submissions import dispatch, lifecycle, tasks
from submissions.models import Score, Status, Submission
from submissions.services import submit
from tests.evaluator.model_zoo import BAD_MODELS, GOOD_MODELS
from tests.platform.helpers import SentTasks, scorecard

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(competition, make_user):
    track = competition.tracks.get(slug="mnist")
    submission = submit(track, make_user("ann"), [GOOD_MODELS["mnist_linear"]()])
    assert submission.status == Status.QUEUED
    return submission


def status_of(submission) -> str:
    return Submission.objects.values_list("status", flat=True).get(pk=submission.pk)


def test_a_submission_is_claimed_once(queued):
    token = lifecycle.claim(queued.pk)
    assert token == 1 and status_of(queued) == Status.SCORING
    assert lifecycle.claim(queued.pk) is None  # a second delivery of the message does nothing


def test_the_score_is_written_once_and_ranks_the_track(queued):
    token = lifecycle.claim(queued.pk)
    assert lifecycle.record_scorecard(queued.pk, token, scorecard(accuracy=0.92)) == "scored"
    assert lifecycle.record_scorecard(queued.pk, token, scorecard(accuracy=0.99)) is None
    assert Score.objects.get(submission=queued).public_accuracy == 0.92
    entry = LeaderboardEntry.objects.get(track=queued.track, split="public", category="accuracy")
    assert (entry.rank, entry.username, entry.submission_id) == (1, "ann", queued.pk)


def test_a_stale_claim_cannot_write(queued):
    old = lifecycle.claim(queued.pk)
    Submission.objects.filter(pk=queued.pk).update(
        scoring_started_at=timezone.now() - timedelta(days=1))
    new = lifecycle.claim(queued.pk)  # abandoned past the deadline: taken over
    assert new == old + 1
    assert lifecycle.record_scorecard(queued.pk, old, scorecard()) is None
    assert not Score.objects.filter(submission=queued).exists()
    assert lifecycle.record_scorecard(queued.pk, new, scorecard()) == "scored"


def test_a_model_fault_is_final_and_counts_as_rejected(queued):
    token = lifecycle.claim(queued.pk)
    card = {"valid": False, "failure_kind": "timeout",
            "error": "The model did not finish within 600 s."}
    assert lifecycle.record_scorecard(queued.pk, token, card) == "rejected"
    queued.refresh_from_db()
    assert (queued.failure_kind, queued.error) == ("timeout", card["error"])
    assert not Score.objects.filter(submission=queued).exists()


def test_platform_errors_are_retried_then_fail_without_counting(queued, settings):
    settings.ARENA_SCORING_MAX_RETRIES = 2
    for _ in range(2):
        token = lifecycle.claim(queued.pk)
        assert lifecycle.release_for_retry(queued.pk, token, "disk full")
        assert status_of(queued) == Status.QUEUED
        assert lifecycle.claim(queued.pk) is None  # not before its back-off ends
        Submission.objects.filter(pk=queued.pk).update(retry_after=timezone.now())
    token = lifecycle.claim(queued.pk)
    assert not lifecycle.release_for_retry(queued.pk, token, "disk full")
    queued.refresh_from_db()
    assert queued.status == Status.FAILED and "does not count" in queued.error


def test_the_task_retries_a_scoring_error_with_back_off(queued, monkeypatch, settings):
    from evaluator.scoring import ScoringError

    sent = []
    settings.ARENA_SCORING_RETRY_BACKOFF_S = 10

    def broken(submission_id, hardware_class=None):
        raise ScoringError("could not start the scoring process")

    monkeypatch.setattr(tasks, "run_evaluator", broken)
    monkeypatch.setattr(dispatch, "current_app", SentTasks(sent))
    assert tasks.score_next.run() == "retrying"
    queued.refresh_from_db()
    # It waits out its back-off in the queue: a token that comes earlier finds nothing to do.
    assert queued.status == Status.QUEUED and queued.retry_after > timezone.now()
    assert tasks.score_next.run() == "idle"
    Submission.objects.filter(pk=queued.pk).update(retry_after=timezone.now())
    assert tasks.score_next.run() == "retrying"
    mine = tasks.hardware.worker_class_name()
    queue = tasks.hardware.queue_name(mine)
    assert sent == [((mine,), queue, 10.0), ((mine,), queue, 20.0)]
    queued.refresh_from_db()
    assert queued.status == Status.QUEUED and queued.platform_retries == 2


def test_requeue_puts_back_only_stuck_submissions(queued, competition, make_user):
    track = competition.tracks.get(slug="mnist")
    fresh = submit(track, make_user("bob"), [GOOD_MODELS["mnist_linear"]()])
    lifecycle.claim(queued.pk)
    lifecycle.claim(fresh.pk)
    Submission.objects.filter(pk=queued.pk).update(
        scoring_started_at=timezone.now() - timedelta(days=1))
    assert lifecycle.requeue_stuck() == [queued.pk]
    assert status_of(queued) == Status.QUEUED and status_of(fresh) == Status.SCORING
    assert lifecycle.requeue_stuck() == []  # queued_at was refreshed: not sent again at once


def test_requeue_gives_up_after_too_many_attempts(queued, settings):
    settings.ARENA_SCORING_MAX_RETRIES = 0
    lifecycle.claim(queued.pk)
    Submission.objects.filter(pk=queued.pk).update(
        scoring_started_at=timezone.now() - timedelta(days=1))
    assert lifecycle.requeue_stuck() == []
    assert status_of(queued) == Status.FAILED


@pytest.mark.integration
def test_the_task_scores_with_the_real_evaluator(queued, competition, make_user,
                                                 prepared_mnist_dir, settings):
    """The task body in this process: real artifact, real sandboxed evaluator, real MNIST."""
    settings.ARENA_DATA_DIR = str(prepared_mnist_dir)
    settings.ARENA_LATENCY_PROTOCOL = "quick"
    assert tasks.score_next.run() == "scored"
    assert tasks.score_next.run() == "idle"
    score = Score.objects.get(submission=queued)
    assert 0.0 <= score.public_accuracy <= 1.0 and score.latency_ms > 0
    assert score.size_bytes > 0 and score.scorecard["provenance"]["model_sha256"] == queued.sha256
    # A model that only fails at run time is the student's fault: rejected, not retried.
    track = competition.tracks.get(slug="mnist")
    nan = submit(track, make_user("bob"), [BAD_MODELS["nan_outputs"]()])
    assert nan.status == Status.QUEUED
    assert tasks.score_next.run() == "rejected"
    nan.refresh_from_db()
    assert nan.failure_kind == "bad_output" and nan.error


def test_the_periodic_task_resends_what_it_requeues(queued, monkeypatch):
    sent = []
    monkeypatch.setattr(dispatch, "current_app", SentTasks(sent, countdown=False))
    tasks.worker_class()  # a worker has started: its class is the default one
    lifecycle.claim(queued.pk)
    Submission.objects.filter(pk=queued.pk).update(
        scoring_started_at=timezone.now() - timedelta(days=1))
    assert tasks.requeue_stuck_submissions.run() == [queued.pk]
    mine = tasks.hardware.worker_class_name()
    assert sent == [((mine,), tasks.hardware.queue_name(mine))]


def test_the_beat_schedule_runs_the_requeue_task():
    from arena.celery import app

    entry = app.conf.beat_schedule["requeue-stuck-submissions"]
    assert entry["task"] == tasks.requeue_stuck_submissions.name
    assert tasks.score_next.acks_late and tasks.score_next.reject_on_worker_lost
    assert 0 < tasks.score_next.soft_time_limit < tasks.score_next.time_limit


def test_rebuild_command_recomputes_stored_rows(queued, capsys):
    from django.core.management import call_command

    token = lifecycle.claim(queued.pk)
    lifecycle.record_scorecard(queued.pk, token, scorecard(accuracy=0.3))
    track = queued.track
    assert LeaderboardEntry.objects.filter(track=track, category="speed").count() == 0
    track.accuracy_floor = 0.2  # the organizer lowers the floor: the model now ranks for speed
    track.save()
    call_command("rebuild_leaderboards", "course")
    assert LeaderboardEntry.objects.filter(track=track, category="speed").count() == 2
    assert "course/mnist" in capsys.readouterr().out


def test_a_run_whose_heartbeat_stops_is_claimable_again_within_the_timeout(queued, settings):
    """A worker killed mid-run stops touching its claim: after ARENA_HEARTBEAT_TIMEOUT_S (not the
    run's whole time limit) beat's sweep puts it back, and the dead run's token can no longer
    write or keep the claim alive."""
    token = lifecycle.claim(queued.pk)
    assert lifecycle.claim(queued.pk) is None  # alive: not claimable
    silent = settings.ARENA_HEARTBEAT_TIMEOUT_S + 1
    assert silent < settings.ARENA_STUCK_AFTER_S  # the heartbeat is what notices, not the limit
    Submission.objects.filter(pk=queued.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=silent))
    assert lifecycle.requeue_stuck() == [queued.pk] and status_of(queued) == Status.QUEUED
    new = lifecycle.claim(queued.pk)
    assert new == token + 1
    assert not lifecycle.heartbeat(Submission, queued.pk, token)  # the dead run's token
    assert lifecycle.heartbeat(Submission, queued.pk, new)
    assert lifecycle.record_scorecard(queued.pk, token, scorecard()) is None
    assert lifecycle.record_scorecard(queued.pk, new, scorecard()) == "scored"


@pytest.mark.django_db(transaction=True)
def test_the_scoring_task_beats_while_the_model_runs(competition, make_user, settings):
    import time

    settings.ARENA_HEARTBEAT_EVERY_S = 0.05
    track = competition.tracks.get(slug="mnist")
    submission = submit(track, make_user("ann"), [GOOD_MODELS["mnist_linear"]()])
    token = lifecycle.claim(submission.pk)
    claimed_beat = Submission.objects.get(pk=submission.pk).heartbeat_at
    with tasks.heartbeat(Submission, submission.pk, token):
        time.sleep(0.5)  # the model running in its child
    later_beat = Submission.objects.get(pk=submission.pk).heartbeat_at
    assert later_beat > claimed_beat + timedelta(seconds=0.3)
