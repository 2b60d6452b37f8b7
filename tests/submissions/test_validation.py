"""The validation stage out of the upload request: the upload answers ``received`` at once, the
validation task's transitions are safe to repeat, and beat's sweep retries or fails what is left
behind, giving its slots back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from submissions import dispatch, quotas, tasks, validation
from submissions.models import Status, Submission
from submissions.services import submit
from tests.evaluator.model_zoo import BAD_MODELS, GOOD_MODELS
from tests.platform.helpers import distinct

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def in_the_worker(settings):
    settings.ARENA_VALIDATE_INLINE = False  # the production path: a task on the validation queue


@pytest.fixture
def track(competition):
    return competition.tracks.get(slug="mnist")


def sent_validations(monkeypatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr(dispatch, "send_validation", sent.append)
    return sent


def test_an_upload_is_received_and_its_check_is_sent_not_run(track, make_user, monkeypatch,
                                                              django_capture_on_commit_callbacks):
    sent = sent_validations(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        submission = submit(track, make_user("ann"), [GOOD_MODELS["mnist_linear"]()])
    assert submission.status == Status.RECEIVED and submission.validation_report is None
    assert sent == [submission.pk]  # the check goes to the validation queue
    # Received holds the daily slot at once (the reservation), before any check.
    assert quotas.usage(track, submission.user).last_24h == 1


def test_the_validation_task_queues_a_valid_file_once(track, make_user, monkeypatch,
                                                      django_capture_on_commit_callbacks):
    sent_validations(monkeypatch)
    tokens: list[str | None] = []
    monkeypatch.setattr(dispatch, "send_tokens", lambda name, *a, **k: tokens.append(name))
    submission = submit(track, make_user("ann"), [GOOD_MODELS["mnist_linear"]()])
    # The scoring token leaves once the verdict has committed.
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.validate_submission(submission.pk) == Status.QUEUED
    assert len(tokens) == 1
    assert tasks.validate_submission(submission.pk) == "not-mine"  # a second delivery
    submission.refresh_from_db()
    assert submission.status == Status.QUEUED and submission.validation_report["ok"]
    assert submission.validation_attempts == 1 and submission.validated_at


def test_an_invalid_file_is_rejected_and_frees_its_daily_slot(track, make_user, monkeypatch):
    sent_validations(monkeypatch)
    ann = make_user("ann")
    submission = submit(track, ann, [BAD_MODELS["garbage_bytes"]()])
    assert tasks.validate_submission(submission.pk) == Status.REJECTED
    submission.refresh_from_db()
    assert submission.error and submission.failure_kind == "invalid"
    used = quotas.usage(track, ann)
    assert (used.last_24h, used.rejected_last_24h) == (0, 1)


def test_a_crash_of_the_gate_fails_the_upload_without_counting(track, make_user, monkeypatch):
    sent_validations(monkeypatch)
    ann = make_user("ann")
    submission = submit(track, ann, [GOOD_MODELS["mnist_linear"]()])

    def broken(_submission):
        raise RuntimeError("the validation child failed")

    monkeypatch.setattr(validation, "check_file", broken)
    assert tasks.validate_submission(submission.pk) == Status.FAILED
    assert Submission.objects.get(pk=submission.pk).failure_kind == "platform"
    used = quotas.usage(track, ann)
    assert (used.last_24h, used.rejected_last_24h) == (0, 0)


def age(submission, **fields_seconds_ago) -> None:
    now = timezone.now()
    Submission.objects.filter(pk=submission.pk).update(
        **{name: now - timedelta(seconds=s) for name, s in fields_seconds_ago.items()})


def test_beat_resends_a_lost_check_and_retries_a_dead_workers(track, make_user, monkeypatch,
                                                            settings):
    sent = sent_validations(monkeypatch)
    lost = submit(track, make_user("ann"), [GOOD_MODELS["mnist_linear"]()])
    fresh = submit(track, make_user("bob"), [GOOD_MODELS["mnist_linear"]()])
    dead = submit(track, make_user("cat"), [GOOD_MODELS["mnist_linear"]()])
    assert validation.claim_validation(dead.pk) == 1
    age(lost, validation_sent_at=settings.ARENA_VALIDATION_RESEND_AFTER_S + 5)
    age(dead, validation_started_at=settings.ARENA_VALIDATION_STUCK_AFTER_S + 5)
    sent.clear()
    tasks.requeue_stuck_submissions()
    assert sorted(sent) == sorted([lost.pk, dead.pk])  # not the fresh one
    assert Submission.objects.get(pk=dead.pk).status == Status.RECEIVED
    assert Submission.objects.get(pk=fresh.pk).status == Status.RECEIVED
    sent.clear()
    tasks.requeue_stuck_submissions()
    assert sent == []  # just re-sent: not again at the next tick
    # The dead worker's claim can no longer write; the retry's can.
    assert validation.claim_validation(dead.pk) == 2
    assert validation.record_validation(dead.pk, 1, validation.check_file(dead)) is None
    assert validation.record_validation(dead.pk, 2, validation.check_file(dead)) == Status.QUEUED


def test_beat_fails_a_check_out_of_tries_or_time_and_gives_the_slots_back(
        track, make_user, monkeypatch, settings):
    sent = sent_validations(monkeypatch)
    ann = make_user("ann")
    tries = submit(track, ann, [GOOD_MODELS["mnist_linear"]()])
    old = submit(track, ann, [distinct(GOOD_MODELS["mnist_linear"](), 1)])
    for _ in range(settings.ARENA_VALIDATION_MAX_ATTEMPTS):
        assert validation.claim_validation(tries.pk) is not None
        age(tries, validation_started_at=settings.ARENA_VALIDATION_STUCK_AFTER_S + 5)
    age(old, created_at=settings.ARENA_VALIDATION_GIVE_UP_S + 5)
    assert quotas.usage(track, ann).last_24h == 2  # both hold their slots until the sweep
    sent.clear()
    tasks.requeue_stuck_submissions()
    for submission in (tries, old):
        submission.refresh_from_db()
        assert (submission.status, submission.failure_kind) == (Status.FAILED, "platform")
        assert "does not count against your quota" in submission.error
    assert sent == []
    used = quotas.usage(track, ann)
    assert (used.last_24h, used.total, used.rejected_last_24h) == (0, 0, 0)
