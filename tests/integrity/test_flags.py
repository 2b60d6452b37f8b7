"""The organizer's integrity flags through the real upload service and lifecycle: copies (same
bytes, same weights renamed and reordered) and test-set training; both submissions named; the
page and the API only for organizers; no flag ever hides a row."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client
from integrity.models import Flag
from integrity.services import flag_copies
from leaderboards.models import LeaderboardEntry

from submissions import lifecycle
from submissions.models import Status
from submissions.services import submit
from tests.evaluator.test_fingerprint import disguised_copy
from tests.platform.helpers import client_for, scorecard

pytestmark = pytest.mark.django_db

BASELINE = (Path(__file__).resolve().parents[2] / "reference_models" / "baselines"
            / "mnist_mlp.onnx").read_bytes()
CHEAT_GAP = {
    "measured": True, "flagged": True, "rule": "better_on_hidden", "relative_loss_gap": -0.21,
    "loss_unit": "nats per image",
    "figures": {"train": {"loss": 0.014, "accuracy": 0.998, "count": 10000},
                "hidden": {"loss": 0.011, "accuracy": 0.9995, "count": 10000}},
    "reason": "May have been trained on the test set: it does better on the public hidden set",
}


def upload_and_score(competition, user, model: bytes, label: str, **card):
    submission = submit(competition.tracks.get(slug="mnist"), user, [model], label=label)
    submission.refresh_from_db()
    assert submission.status == Status.QUEUED, submission.error
    token = lifecycle.claim(submission.pk)
    assert lifecycle.record_scorecard(submission.pk, token, scorecard(**card)) == "scored"
    return submission


def test_renamed_copy_and_identical_file_are_flagged_with_both_named(
        competition, make_user, django_capture_on_commit_callbacks):
    ann, bob, cat = make_user("ann"), make_user("bob"), make_user("cat")
    with django_capture_on_commit_callbacks(execute=True):
        original = upload_and_score(competition, ann, BASELINE, "ann.onnx")
        renamed = upload_and_score(competition, bob, disguised_copy(BASELINE), "bob.onnx")
        same = upload_and_score(competition, cat, BASELINE, "cat.onnx")
    assert renamed.sha256 != original.sha256
    flags = {flag.kind: flag for flag in Flag.objects.all()}
    assert set(flags) == {Flag.Kind.SAME_WEIGHTS, Flag.Kind.SAME_BYTES}
    weights = flags[Flag.Kind.SAME_WEIGHTS]
    assert (weights.submission, weights.other) == (renamed, original)
    assert "ann" in weights.reason and f"submission {original.pk}" in weights.reason
    copy = flags[Flag.Kind.SAME_BYTES]
    assert (copy.submission, copy.other) == (same, original)  # the earliest one, not bob's
    # Nothing hidden: all three are ranked.
    ranked = set(LeaderboardEntry.objects.values_list("submission_id", flat=True))
    assert {original.pk, renamed.pk, same.pk} <= ranked
    # Idempotent: scanning again adds nothing.
    flag_copies(renamed)
    assert Flag.objects.count() == 2


def test_own_reuploads_and_baselines_are_not_copies(competition, make_user, instructor,
                                                    django_capture_on_commit_callbacks):
    ann = make_user("ann")
    with django_capture_on_commit_callbacks(execute=True):
        submission = submit(competition.tracks.get(slug="mnist"), instructor, [BASELINE],
                            label="baseline", as_baseline=True)
        lifecycle.record_scorecard(submission.pk, lifecycle.claim(submission.pk), scorecard())
        upload_and_score(competition, ann, disguised_copy(BASELINE), "mine.onnx")
        upload_and_score(competition, ann, BASELINE, "mine-again.onnx")
    assert not Flag.objects.exists()


def test_test_set_training_flag_keeps_the_row_and_shows_the_figures(
        competition, make_user, instructor, django_capture_on_commit_callbacks):
    ann, bob = make_user("ann"), make_user("bob")
    with django_capture_on_commit_callbacks(execute=True):
        cheat = upload_and_score(competition, ann, BASELINE, "cheat.onnx", train_gap=CHEAT_GAP,
                                 hidden_set={"name": "mnist", "public": True})
        upload_and_score(competition, bob, disguised_copy(BASELINE), "x.onnx",
                         train_gap={**CHEAT_GAP, "flagged": False, "rule": ""})
    (flag,) = Flag.objects.filter(kind=Flag.Kind.TEST_SET_TRAINING)
    assert flag.submission == cheat and flag.other is None
    assert flag.details["figures"]["train"]["count"] == 10000
    assert LeaderboardEntry.objects.filter(submission=cheat).exists()

    page = Client()
    page.force_login(instructor)
    board = page.get(f"/c/{competition.slug}/").content.decode()
    assert f"/c/{competition.slug}/organize/integrity/" in board  # linked from organizer tools
    html = page.get(f"/c/{competition.slug}/organize/integrity/").content.decode()
    assert "May have been trained on the test set" in html and "cheat.onnx" in html
    assert "bob" in html  # the renamed copy of ann's file, named with both
    api = client_for(instructor).get(f"/api/competitions/{competition.slug}/integrity/")
    assert api.status_code == 200
    kinds = {row["kind"] for row in api.json()["flags"]}
    assert kinds == {"test_set_training", "same_weights"}
    row = next(r for r in api.json()["flags"] if r["kind"] == "same_weights")
    assert row["submission"]["user"] == "bob" and row["other"]["user"] == "ann"

    student = Client()
    student.force_login(ann)
    assert student.get(f"/c/{competition.slug}/organize/integrity/").status_code == 404
    assert client_for(ann).get(
        f"/api/competitions/{competition.slug}/integrity/").status_code == 404
    assert Client().get(f"/c/{competition.slug}/organize/integrity/").status_code == 302


def test_a_copy_is_flagged_as_soon_as_it_passes_validation(competition, make_user,
                                                           django_capture_on_commit_callbacks):
    ann, bob = make_user("ann"), make_user("bob")
    track = competition.tracks.get(slug="mnist")
    with django_capture_on_commit_callbacks(execute=True):
        original = submit(track, ann, [BASELINE], label="ann.onnx")
        copy = submit(track, bob, [disguised_copy(BASELINE)], label="bob.onnx")
    copy.refresh_from_db()
    assert copy.status == Status.QUEUED  # not scored yet, and it stays in the queue
    (flag,) = Flag.objects.all()
    assert (flag.kind, flag.submission, flag.other) == (Flag.Kind.SAME_WEIGHTS, copy, original)
