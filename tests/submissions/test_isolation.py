"""A worker whose sandbox lacks a required isolation (ARENA_REQUIRE_ISOLATION) refuses to run
models: a platform error with the reason on the submission and in the log, never the model's fault,
never a run without it. The children are real; only their limits are weakened, as a container that
refuses unshare(CLONE_NEWNET) or starts the worker as a non-root user would."""

from __future__ import annotations

import dataclasses
import logging
import os

import pytest

from evaluator import sandbox, scoring
from evaluator.validation import isolated
from submissions import dispatch, quotas, tasks
from submissions.models import Status, Submission
from submissions.services import submit
from tests.evaluator.model_zoo import GOOD_MODELS
from tests.evaluator.scoring_helpers import tiny_data_dir  # noqa: F401 - a fixture
from tests.platform.helpers import SentTasks

pytestmark = pytest.mark.django_db
BOTH = ("network", "user")
ROOT = os.getuid() == 0


def weaken_scoring(monkeypatch, **changes) -> None:
    real = scoring.run_child
    monkeypatch.setattr(scoring, "run_child", lambda job, payload, limits, deadlines=None: real(
        job, payload, dataclasses.replace(limits, **changes), deadlines))


@pytest.fixture
def track(competition):
    return competition.tracks.get(slug="mnist")


def test_scoring_refuses_and_retries_as_a_platform_error(track, make_user, settings, monkeypatch,
                                                         tiny_data_dir, caplog):  # noqa: F811
    settings.ARENA_DATA_DIR = str(tiny_data_dir)
    settings.ARENA_LATENCY_PROTOCOL = "quick"
    monkeypatch.setattr(dispatch, "current_app", SentTasks([]))
    submission = submit(track, make_user("ann"), [GOOD_MODELS["mnist_linear"]()])
    assert submission.status == Status.QUEUED  # checked inline before the requirement is set
    settings.ARENA_REQUIRE_ISOLATION = ("network",)
    weaken_scoring(monkeypatch, isolate_network=False)
    with caplog.at_level(logging.ERROR, logger="submissions.tasks"):
        assert tasks.score_next.run() == "retrying"
    submission.refresh_from_db()
    # Back in the queue for a fixed worker, not scored, not blamed on the model.
    assert submission.status == Status.QUEUED and submission.platform_retries == 1
    assert submission.failure_kind in ("", None) and not hasattr(submission, "score")
    assert "IsolationError" in submission.error and "network namespace" in submission.error
    assert "ARENA_REQUIRE_ISOLATION" in caplog.text


def test_validation_refuses_without_a_required_isolation(track, make_user, settings, monkeypatch):
    settings.ARENA_VALIDATE_INLINE = False
    settings.ARENA_VALIDATE_ISOLATED = True
    settings.ARENA_REQUIRE_ISOLATION = ("network",)
    monkeypatch.setattr(dispatch, "send_validation", lambda submission_id: True)
    real = isolated.validation_limits
    monkeypatch.setattr(isolated, "validation_limits", lambda **kwargs: dataclasses.replace(
        real(**kwargs), isolate_network=False))
    ann = make_user("ann")
    submission = submit(track, ann, [GOOD_MODELS["mnist_linear"]()])
    assert tasks.validate_submission(submission.pk) == Status.FAILED
    stored = Submission.objects.get(pk=submission.pk)
    assert stored.failure_kind == "platform"
    assert "network namespace" in stored.error and "does not count against your quota" in stored.error
    used = quotas.usage(track, ann)
    assert (used.last_24h, used.rejected_last_24h) == (0, 0)


def test_validation_in_the_workers_own_process_is_refused_when_isolation_is_required(
        track, make_user, settings, monkeypatch):
    settings.ARENA_VALIDATE_INLINE = False
    settings.ARENA_VALIDATE_ISOLATED = False
    settings.ARENA_REQUIRE_ISOLATION = ("user",)
    monkeypatch.setattr(dispatch, "send_validation", lambda submission_id: True)
    submission = submit(track, make_user("ann"), [GOOD_MODELS["mnist_linear"]()])
    assert tasks.validate_submission(submission.pk) == Status.FAILED
    assert "ARENA_VALIDATE_ISOLATED is off" in Submission.objects.get(pk=submission.pk).error


@pytest.mark.skipif(not ROOT, reason="the drop to nobody needs a root worker")
def test_as_root_validation_and_scoring_run_with_both(track, make_user, settings, tiny_data_dir):  # noqa: F811
    settings.ARENA_REQUIRE_ISOLATION = BOTH
    settings.ARENA_VALIDATE_ISOLATED = True
    settings.ARENA_DATA_DIR = str(tiny_data_dir)
    settings.ARENA_LATENCY_PROTOCOL = "quick"
    submission = submit(track, make_user("ann"), [GOOD_MODELS["mnist_linear"]()])
    assert submission.status == Status.QUEUED  # checked inline, in the child, as nobody
    card = tasks.run_evaluator(submission.pk)
    assert card["valid"] is True and card["sandbox"]["uid"] == 65534
    assert card["sandbox"]["network_isolated"] is True


def test_a_worker_says_at_start_what_its_sandbox_lacks(settings, monkeypatch, caplog):
    settings.ARENA_REQUIRE_ISOLATION = BOTH
    original = sandbox.probe_isolation
    monkeypatch.setattr(sandbox, "probe_isolation", lambda limits: original(
        dataclasses.replace(limits, isolate_network=False, drop_privileges=False)))
    with caplog.at_level(logging.ERROR, logger="submissions.tasks"):
        missing = tasks.check_worker_isolation()
    assert [line.split(":")[0] for line in missing] == ["network", "user"]
    assert "refuses every model" in caplog.text and "unshare(CLONE_NEWNET)" in caplog.text
    monkeypatch.undo()
    settings.ARENA_REQUIRE_ISOLATION = BOTH
    if ROOT:
        assert tasks.check_worker_isolation() == []
    settings.ARENA_REQUIRE_ISOLATION = ()
    assert tasks.check_worker_isolation() == []
