"""Issue 12's ranking rules and the student's side of them: final picks on the private split,
late uploads, extensions and extra uploads, hidden submissions, re-scoring without quota."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from competitions.models import Track
from coursework import services as coursework
from coursework.eligibility import eligible_ids, is_late
from coursework.models import FinalPick, Policy
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from leaderboards.models import LeaderboardEntry

from submissions import lifecycle, quotas
from submissions.models import Rescore, Status, Submission
from submissions.quotas import QuotaExceeded
from submissions.rescoring import RescoreRefused, rescore, score_versions
from submissions.services import UploadRefused, submit
from tests.evaluator.model_zoo import GOOD_MODELS
from tests.platform.helpers import client_for, distinct, scorecard

pytestmark = pytest.mark.django_db
UPLOADS = itertools.count(1000)


def upload(track, user, baseline: bool = False, **card) -> Submission:
    """A submission through the real upload service, scored with ``card`` (no worker)."""
    submission = submit(track, user, [distinct(GOOD_MODELS["mnist_linear"](), next(UPLOADS))],
                        label=f"m{next(UPLOADS)}.onnx", as_baseline=baseline)
    token = lifecycle.claim(submission.pk)
    lifecycle.record_scorecard(submission.pk, token, scorecard(**card))
    submission.refresh_from_db()
    return submission


def board(track, split="private", category="accuracy") -> list[tuple[str, int]]:
    return list(LeaderboardEntry.objects.filter(track=track, split=split, category=category,
                                                is_baseline=False)
                .order_by("position").values_list("username", "submission_id"))


def close(competition) -> None:
    """The deadline passes (now), and the boards are ranked again as the deadline is."""
    competition.deadline = timezone.now() - timedelta(seconds=1)
    competition.save(update_fields=["deadline"])


class C:  # a candidate as the pure rule sees it
    def __init__(self, sid, user, accuracy, minute=0, baseline=False):
        self.submission_id, self.participant_id, self.accuracy = sid, user, accuracy
        self.submitted_at = datetime(2026, 1, 1, 0, minute, tzinfo=UTC)
        self.is_baseline = baseline


def test_eligibility_rule_on_plain_data():
    public = [C(1, 10, 0.90), C(2, 10, 0.95, 1), C(3, 20, 0.80), C(4, 20, 0.85, 2),
              C(5, 30, 0.99), C(6, 99, 0.5, baseline=True)]
    by_split = {"public": public, "private": public}
    # Student 10 picked #1 (not their best public); 20 picked nothing; 30's only one is hidden.
    out = eligible_ids(by_split, hidden={5}, late={4}, finals={10: {1}})
    assert out["public"] == {1, 2, 3, 6}
    # Private: the pick alone for 10; the best public of the on-time ones for 20; baselines stay.
    assert out["private"] == {1, 3, 6}
    # A pick that is itself hidden or late counts as no pick: the best public one is ranked.
    assert eligible_ids(by_split, hidden={1}, late=set(), finals={10: {1}})["private"] == {
        2, 4, 5, 6}


def test_is_late_respects_the_extension():
    deadline = datetime(2026, 1, 2, tzinfo=UTC)
    assert not is_late(deadline - timedelta(seconds=1), deadline)
    assert is_late(deadline, deadline)
    assert not is_late(deadline + timedelta(hours=1), deadline, deadline + timedelta(days=1))
    assert is_late(deadline + timedelta(days=2), deadline, deadline + timedelta(days=1))


def test_final_picks_choose_what_the_private_board_ranks(competition, make_user):
    track = competition.tracks.get(slug="mnist")
    ann, bob = make_user("ann"), make_user("bob")
    ann_best = upload(track, ann, accuracy=0.95, private_accuracy=0.80)
    ann_other = upload(track, ann, accuracy=0.90, private_accuracy=0.97)
    bob_best = upload(track, bob, accuracy=0.93, private_accuracy=0.85)
    upload(track, bob, accuracy=0.91, private_accuracy=0.99)
    # No picks: the best public submission of each is ranked on the private split (Kaggle).
    assert board(track) == [("bob", bob_best.pk), ("ann", ann_best.pk)]
    coursework.set_final(ann_other, ann, True)
    assert board(track) == [("ann", ann_other.pk), ("bob", bob_best.pk)]
    assert board(track, "public")[0] == ("ann", ann_best.pk)  # the public board ignores picks
    coursework.set_final(ann_other, ann, False)
    assert board(track)[1] == ("ann", ann_best.pk)


def test_at_most_n_picks_only_own_scored_ones_and_none_after_the_deadline(competition, make_user):
    track = competition.tracks.get(slug="mnist")
    ann, bob = make_user("ann"), make_user("bob")
    coursework.grant_extension(competition, ann, deadline=None, extra_uploads=2)  # 5 a day
    subs = [upload(track, ann, accuracy=0.9 + i / 100) for i in range(3)]
    coursework.set_final(subs[0], ann, True)
    coursework.set_final(subs[1], ann, True)
    with pytest.raises(coursework.NotAllowed, match="at most 2"):
        coursework.set_final(subs[2], ann, True)
    with pytest.raises(coursework.NotAllowed, match="your own"):
        coursework.set_final(subs[2], bob, True)
    over = upload(track, ann, accuracy=0.9, latency_ms=500.0)  # over the latency limit
    assert over.status == Status.OVER_LIMIT
    coursework.set_final(subs[0], ann, False)
    with pytest.raises(coursework.NotAllowed, match="scored submission"):
        coursework.set_final(over, ann, True)
    Policy.objects.create(competition=competition, final_picks=3)
    coursework.set_final(subs[2], ann, True)
    close(competition)
    with pytest.raises(coursework.NotAllowed, match="deadline has passed"):
        coursework.set_final(subs[0], ann, True)
    assert FinalPick.objects.filter(submission__user=ann).count() == 2


def test_student_marks_final_from_the_page_and_sees_it_in_the_api(competition, make_user):
    track = competition.tracks.get(slug="mnist")
    ann, bob = make_user("ann"), make_user("bob")
    sub = upload(track, ann)
    client = Client()
    client.force_login(ann)
    page = client.get("/c/course/me/").content.decode()
    assert "Mark as final" in page and "Mark up to 2 scored submissions" in page
    response = client.post(f"/c/course/me/final/{sub.pk}/", {"final": "true"})
    assert response.status_code == 302
    page = client.get("/c/course/me/").content.decode()
    assert "data-final" in page and "Unmark final" in page
    api = client.get(f"/api/submissions/{sub.pk}/").json()
    assert api["final"] is True and api["late"] is False and api["hidden_reason"] is None
    # The API marks and unmarks it too; refusals come back in words.
    token = client_for(ann)
    assert token.post(f"/api/submissions/{sub.pk}/final/", {"final": False},
                      format="json").json()["final"] is False
    assert token.post(f"/api/submissions/{sub.pk}/final/", {"final": True},
                      format="json").json()["final"] is True
    assert client_for(bob).post(f"/api/submissions/{sub.pk}/final/", {"final": True},
                                format="json").status_code == 404
    close(competition)
    refused = token.post(f"/api/submissions/{sub.pk}/final/", {"final": False}, format="json")
    assert refused.status_code == 400 and "deadline has passed" in refused.json()["detail"]
    # Another student cannot pick it, and does not learn that it exists.
    other = Client()
    other.force_login(bob)
    assert other.post(f"/c/course/me/final/{sub.pk}/", {"final": "true"}).status_code == 404


def test_late_uploads_are_scored_shown_and_never_ranked_unless_extended(competition, make_user):
    track = competition.tracks.get(slug="mnist")
    ann, bob = make_user("ann"), make_user("bob")
    upload(track, ann, accuracy=0.80)
    upload(track, bob, accuracy=0.70)
    close(competition)
    with pytest.raises(UploadRefused, match="is closed"):  # late uploads are off by default
        upload(track, ann)
    Policy.objects.create(competition=competition, accept_late=True)
    late = upload(track, ann, accuracy=0.99)
    assert late.status == Status.SCORED
    assert ("ann", late.pk) not in board(track, "public")
    client = Client()
    client.force_login(ann)
    page = client.get("/c/course/me/").content.decode()
    assert "data-late" in page and "never ranked" in page
    # Bob gets an extension: his upload after the deadline is on time for him and ranked.
    coursework.grant_extension(competition, bob, deadline=timezone.now() + timedelta(days=1))
    extended = upload(track, bob, accuracy=0.98)
    assert board(track, "public")[0] == ("bob", extended.pk)
    assert ("ann", late.pk) not in board(track, "public")


def test_extra_uploads_raise_both_limits(competition, make_user):
    track = competition.tracks.get(slug="mnist")  # 3 a day
    ann = make_user("ann")
    for _ in range(3):
        upload(track, ann)
    with pytest.raises(QuotaExceeded):
        upload(track, ann)
    coursework.grant_extension(competition, ann, deadline=None, extra_uploads=1)
    client = Client()
    client.force_login(ann)
    assert "1 of 4 in the next 24 hours (8 of 11 in total)" in client.get(
        "/c/course/me/").content.decode()
    upload(track, ann)
    with pytest.raises(QuotaExceeded, match="your 4 submissions"):
        upload(track, ann)


def test_a_hidden_submission_leaves_the_board_and_the_student_sees_why(competition, make_user,
                                                                      instructor):
    track = competition.tracks.get(slug="mnist")
    ann = make_user("ann")
    sub = upload(track, ann, accuracy=0.99)
    assert board(track, "public") == [("ann", sub.pk)]
    with pytest.raises(coursework.NotAllowed):
        coursework.hide(sub, "  ", instructor)
    coursework.hide(sub, "Trained on the test set.", instructor)
    assert board(track, "public") == [] and board(track) == []
    client = Client()
    client.force_login(ann)
    assert "Trained on the test set." in client.get("/c/course/me/").content.decode()
    assert client.get(f"/api/submissions/{sub.pk}/").json()["hidden_reason"] == \
        "Trained on the test set."
    coursework.unhide(sub)
    assert board(track, "public") == [("ann", sub.pk)]


def test_rescore_queues_once_costs_no_quota_and_keeps_the_score(competition, make_user):
    from hardware.services import register

    register("x86_64-test")
    track = competition.tracks.get(slug="mnist")
    ann = make_user("ann")
    subs = [upload(track, ann, accuracy=0.9), upload(track, ann, accuracy=0.8)]
    assert "data-mixed-versions" not in Client().get("/c/course/").content.decode()
    used = quotas.usage(track, ann)
    assert rescore(track) == 2
    assert rescore(track) == 0  # pending ones are never doubled
    assert quotas.usage(track, ann) == used
    assert all(Submission.objects.get(pk=s.pk).score.public_accuracy is not None for s in subs)
    assert board(track, "public")  # still on the board while the re-scores wait
    with pytest.raises(RescoreRefused, match="not on this track"):
        rescore(competition.tracks.get(slug="tinygpt"), subs[0])
    # A re-score lands: the new card (another protocol) replaces the old one in place.
    rescore_row = Rescore.objects.filter(submission=subs[0]).get()
    token = lifecycle.claim_rescore(rescore_row.pk, rescore_row.hardware_class)
    card = scorecard(accuracy=0.91, protocol={"warmup_runs": 99})
    assert lifecycle.record_rescore(rescore_row.pk, token, card) == Status.SCORED
    assert Submission.objects.get(pk=subs[0].pk).score.public_accuracy == 0.91
    assert len(score_versions(track)) == 2  # the board now mixes two protocol versions
    assert "data-mixed-versions" in Client().get("/c/course/").content.decode()
    api = Client().get("/api/competitions/course/leaderboard/?track=mnist").json()
    assert len(api["score_versions"]) == 2 and sum(api["score_versions"].values()) == 2


def test_manage_rescore_one_submission(competition, make_user, capsys):
    from hardware.services import register

    register("x86_64-test")
    track = competition.tracks.get(slug="mnist")
    sub = upload(track, make_user("ann"))
    call_command("rescore", "course", "mnist", "--submission", str(sub.pk))
    assert "1 submission(s) queued" in capsys.readouterr().out
    call_command("rescore", "course", "mnist", "--status")
    assert "queued 1" in capsys.readouterr().out
    assert Track.objects.get(pk=track.pk).hardware_class == ""  # its class is not changed


def test_score_versions_are_counted_once_per_leaderboard_version(competition, make_user,
                                                                   django_assert_num_queries):
    # Every leaderboard request reads them: one query over the track's scores, then the cache
    # until the board changes (measured at 100,000 scores, the query alone cost the API ~200 ms).
    track = competition.tracks.get(slug="mnist")
    upload(track, make_user("ann"), accuracy=0.9)
    track.refresh_from_db()
    with django_assert_num_queries(1):
        first = score_versions(track)
    with django_assert_num_queries(0):
        assert score_versions(track) == first
    upload(track, make_user("bob"), accuracy=0.8)  # a new best row: a new leaderboard version
    track.refresh_from_db()
    assert sum(score_versions(track).values()) == sum(first.values()) + 1
