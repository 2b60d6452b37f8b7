"""One score's update of the stored leaderboard (``leaderboards.incremental``) leaves exactly the
rows a full rebuild writes, on random histories: ties on every metric, overlapping speed
intervals (tie groups that regroup), scorecards without a speed index, baselines, re-scores that
make a student's best worse or take it away, the course rules (hidden submissions, final
picks for the private split) where they exist, and teams (half the histories: the team is the
participant, one row per board, the best of its members' submissions and final picks)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from competitions.models import Track
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from leaderboards.incremental import refresh_student
from leaderboards.models import LeaderboardEntry
from leaderboards.ranking import rebuild_track

from submissions.models import Score, Status, Submission
from submissions.signals import scores_changed

pytestmark = pytest.mark.django_db

T0 = timezone.now() - timedelta(days=1)
COLUMNS = [field.attname for field in LeaderboardEntry._meta.concrete_fields if field.name != "id"]


def stored(track) -> list[tuple]:
    return list(LeaderboardEntry.objects.filter(track=track)
                .order_by("split", "category", "position").values_list(*COLUMNS))


def _difference(incremental: list[tuple], full: list[tuple]) -> str:
    import difflib

    short = [COLUMNS.index(name) for name in ("split", "category", "position", "rank", "tied",
                                              "submission_id")]
    lines = [[str(tuple(row[i] for i in short)) for row in rows] for rows in (incremental, full)]
    return "\n".join(difflib.unified_diff(*lines, "incremental", "full rebuild", lineterm=""))


def random_score(rng: random.Random) -> dict:
    index = rng.choice([None, 0.8, 1.0, 1.0, 1.1, 1.2, 1.5, 2.0])
    spread = rng.choice([None, 0.0, 0.05, 0.15, 0.3])
    with_interval = index is not None and spread is not None
    public = rng.choice([0.4, 0.6, 0.8, 0.8, 0.9, 0.95])
    return {
        "public_accuracy": public,
        "private_accuracy": rng.choice([public, 0.6, 0.85, 0.9]),
        "latency_ms": rng.choice([1.0, 2.0, 2.0, 3.0, 50.0]),
        "size_bytes": rng.choice([1000, 5000, 5000, 20_000, 400_000]),
        "speed_index": index,
        "speed_index_low": index - spread if with_interval else None,
        "speed_index_high": index + spread if with_interval else None,
        "normalized_latency_ms": rng.choice([None, 2.0 / index]) if index else None,
        "scorecard": {},
    }


def write(track, user, rng: random.Random, *, baseline: bool = False) -> Submission:
    """What ``lifecycle.record_scorecard`` does for a scored upload: the Score, then the signal
    under the track's lock (created at a random, possibly earlier, time: out-of-order scoring)."""
    with transaction.atomic():
        locked = Track.objects.select_for_update().get(pk=track.pk)
        submission = Submission.objects.create(
            track=track, user=user, is_baseline=baseline, label=f"b{rng.random():.3f}",
            sha256="0" * 64, size_bytes=1, artifact_path="x.onnx", status=Status.SCORED)
        Submission.objects.filter(pk=submission.pk).update(
            created_at=T0 + timedelta(minutes=rng.randint(0, 40)))
        Score.objects.create(submission=submission, **random_score(rng))
        scores_changed.send(sender=Submission, track=locked, submission_id=submission.pk,
                            user_id=user.pk)
    return submission


def rescore(track, submission: Submission, rng: random.Random) -> None:
    """What ``lifecycle.record_rescore`` does: the score replaced (or the model now over a
    limit, so no longer ranked), then the signal."""
    with transaction.atomic():
        locked = Track.objects.select_for_update().get(pk=track.pk)
        Score.objects.filter(submission=submission).delete()
        if rng.random() < 0.25:
            Submission.objects.filter(pk=submission.pk).update(status=Status.OVER_LIMIT)
        else:
            Submission.objects.filter(pk=submission.pk).update(status=Status.SCORED)
            Score.objects.create(submission=submission, **random_score(rng))
        scores_changed.send(sender=Submission, track=locked, submission_id=submission.pk,
                            user_id=submission.user_id)


def course_rule(track, submission: Submission, rng: random.Random) -> bool:
    """Hide a submission or make it a final pick, then rebuild as the course's services do;
    False where the course rules are not installed."""
    try:
        from coursework.models import FinalPick, Hiding
    except ImportError:
        return False
    with transaction.atomic():
        locked = Track.objects.select_for_update().get(pk=track.pk)
        if rng.random() < 0.5:
            Hiding.objects.get_or_create(submission=submission, defaults={"reason": "test"})
        else:
            FinalPick.objects.get_or_create(submission=submission)
        rebuild_track(locked)
    return True


def form_teams(competition, students: list, rng: random.Random) -> None:
    """Teams on, and teams of two or three of the students (some stay on their own), before
    any score as the team rules require (``teams.rules``); at least one team. Nothing where
    teams are not installed."""
    try:
        from teams.models import Membership, Team
    except ImportError:
        return
    type(competition).objects.filter(pk=competition.pk).update(teams_enabled=True)
    shuffled = rng.sample(students, len(students))
    while len(shuffled) >= 2 and (not competition.teams.exists() or rng.random() < 0.6):
        size = min(rng.choice([2, 3]), len(shuffled))
        members, shuffled = shuffled[:size], shuffled[size:]
        team = Team.objects.create(competition=competition, name=f"team{members[0].pk}")
        for member in members:
            Membership.objects.create(team=team, competition=competition, user=member)


def assert_stored_equals_full_rebuild(track, where: str) -> None:
    """The rows the incremental writes left are exactly those a full rebuild writes."""
    incremental = stored(track)
    with transaction.atomic():
        rebuild_track(Track.objects.select_for_update().get(pk=track.pk))
    full = stored(track)
    assert full == incremental, f"{where}: " + _difference(incremental, full)


@pytest.mark.parametrize("seed", range(12))
def test_incremental_updates_equal_a_full_rebuild_on_random_histories(seed, competition,
                                                                      make_user, instructor):
    rng = random.Random(seed)
    track = competition.tracks.get(slug="mnist")
    students = [make_user(f"student{i}") for i in range(rng.randint(2, 8))]
    if seed % 2:  # its own random stream: the histories of the even seeds stay as they were
        form_teams(competition, students, random.Random(seed + 1000))
    written: list[Submission] = []
    for step in range(rng.randint(25, 45)):
        roll = rng.random()
        if roll < 0.06:
            write(track, instructor, rng, baseline=True)
        elif roll < 0.2 and written:
            rescore(track, rng.choice(written), rng)
        elif roll < 0.26 and written:
            course_rule(track, rng.choice(written), rng)
        else:
            written.append(write(track, rng.choice(students), rng))
        assert_stored_equals_full_rebuild(track, f"seed {seed}, step {step}")
        if seed % 2:  # one row per participant per board (a team's members share one)
            boards = LeaderboardEntry.objects.filter(track=track, is_baseline=False).exclude(
                category="pareto")
            keys = [(split, category, team or f"u{user}") for split, category, team, user in
                    boards.values_list("split", "category", "team_id", "user_id")]
            assert len(keys) == len(set(keys)), f"seed {seed}, step {step}"
    assert LeaderboardEntry.objects.filter(track=track).exists()
    if seed % 2:
        assert LeaderboardEntry.objects.filter(track=track, team__isnull=False).exists()


def test_a_score_that_changes_nothing_writes_nothing(competition, make_user):
    """The write does not grow with the track: with 40 students on the board, a student's
    worse submission writes no row and reads only the student's own rows (a fixed number of
    queries: their candidates, the course rules, their stored rows, one row per board)."""
    rng = random.Random(7)
    track = competition.tracks.get(slug="mnist")
    students = [make_user(f"s{i}") for i in range(40)]
    for student in students:
        write(track, student, rng)
    ann = students[0]
    with transaction.atomic():
        before = stored(track)
        version = Track.objects.get(pk=track.pk).leaderboard_version
        # Worse than ann's best on every board (and dominated on the front).
        submission = Submission.objects.create(
            track=track, user=ann, sha256="0" * 64, size_bytes=1, artifact_path="x.onnx",
            status=Status.SCORED)
        Score.objects.create(submission=submission, public_accuracy=0.1, private_accuracy=0.1,
                             latency_ms=99.0, size_bytes=9_000_000, speed_index=0.01,
                             scorecard={})
        locked = Track.objects.select_for_update().get(pk=track.pk)
        with CaptureQueriesContext(connection) as queries:
            assert refresh_student(locked, ann.pk) == 0
        assert stored(track) == before
        assert Track.objects.get(pk=track.pk).leaderboard_version == version
        reads = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]
        writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
        assert writes == [], writes
        assert len(reads) <= 12, reads
        whole_track = [sql for sql in reads if '"leaderboards_leaderboardentry"' in sql
                       and '"user_id" =' not in sql and "LIMIT" not in sql
                       and "'pareto'" not in sql]  # the stored front is read whole (it is short)
        assert whole_track == [], whole_track


def test_the_signal_of_a_real_scoring_write_updates_the_board(competition, make_user):
    """``lifecycle.record_scorecard`` sends the signal and the receiver ranks the student."""
    from submissions import lifecycle
    from tests.platform.helpers import scorecard

    track = competition.tracks.get(slug="mnist")
    ann = make_user("ann")
    submission = Submission.objects.create(
        track=track, user=ann, sha256="0" * 64, size_bytes=1, artifact_path="x.onnx",
        status=Status.SCORING, attempts=1)
    assert lifecycle.record_scorecard(submission.pk, 1, scorecard(accuracy=0.9)) == "scored"
    rows = LeaderboardEntry.objects.filter(track=track, split="public", category="accuracy")
    assert [(row.rank, row.submission_id) for row in rows] == [(1, submission.pk)]
    incremental = stored(track)
    rebuild_track(track)
    assert stored(track) == incremental


def test_the_admin_action_rebuilds_the_selected_competitions(competition, make_user, client):
    from django.contrib.auth import get_user_model

    rng = random.Random(3)
    track = competition.tracks.get(slug="mnist")
    for name in ("ann", "bob"):
        write(track, make_user(name), rng)
    expected = stored(track)
    LeaderboardEntry.objects.filter(track=track).delete()
    admin_user = get_user_model().objects.create_superuser("root", "root@example.org", "pw")
    client.force_login(admin_user)
    response = client.post("/admin/competitions/competition/", {
        "action": "rebuild_leaderboards", "_selected_action": [competition.pk]}, follow=True)
    assert response.status_code == 200
    assert "leaderboard rows written" in response.content.decode()
    assert stored(track) == expected
