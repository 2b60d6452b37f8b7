"""The course's changes (hiding and showing again, final picks, extensions: ``coursework.services``)
move only the affected participant's leaderboard rows through the incremental write
(``leaderboards.incremental.refresh_student``), and leave exactly the rows a full rebuild writes:
random histories of scores, re-scores and those changes, with late uploads (half the history
is after the deadline) and, in half the histories, teams."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from coursework import services as coursework
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from leaderboards.models import LeaderboardEntry
from leaderboards.ranking import rebuild_track

from submissions.models import Status
from tests.platform.test_incremental import (
    T0,
    assert_stored_equals_full_rebuild,
    form_teams,
    rescore,
    stored,
    write,
)

pytestmark = pytest.mark.django_db


def course_change(competition, written: list, students: list, instructor,
                  rng: random.Random) -> None:
    """One of the course's changes, through its service (a refused one changes nothing)."""
    submission = rng.choice(written)
    roll = rng.random()
    try:
        if roll < 0.3:
            coursework.hide(submission, "copied", instructor)
        elif roll < 0.45:
            coursework.unhide(submission)
        elif roll < 0.8:
            submission.refresh_from_db()
            coursework.set_final(submission, submission.user, rng.random() < 0.75)
        else:
            # Past (some late uploads now count, picks stay closed) or future (all count).
            extended = rng.choice([None, T0 + timedelta(minutes=rng.randint(10, 60)),
                                   timezone.now() + timedelta(days=1)])
            coursework.grant_extension(competition, rng.choice(students), deadline=extended)
    except coursework.NotAllowed:
        pass


@pytest.mark.parametrize("seed", range(10))
def test_course_changes_through_the_incremental_write_equal_a_full_rebuild(
        seed, competition, make_user, instructor):
    rng = random.Random(seed)
    track = competition.tracks.get(slug="mnist")
    # Uploads are made T0 + 0..40 minutes: those after T0 + 20 are late unless extended; final
    # picks change only for a student whose extension runs past now.
    type(competition).objects.filter(pk=competition.pk).update(
        deadline=T0 + timedelta(minutes=20), start=T0 - timedelta(days=1))
    competition.refresh_from_db()
    students = [make_user(f"student{i}") for i in range(rng.randint(2, 6))]
    if seed % 2:
        form_teams(competition, students, random.Random(seed + 1000))
    written = []
    changes = 0
    for step in range(rng.randint(25, 40)):
        roll = rng.random()
        if roll < 0.05:
            write(track, instructor, rng, baseline=True)
        elif roll < 0.15 and written:
            rescore(track, rng.choice(written), rng)
        elif roll < 0.5 and written:
            course_change(competition, written, students, instructor, rng)
            changes += 1
        else:
            written.append(write(track, rng.choice(students), rng))
        assert_stored_equals_full_rebuild(track, f"seed {seed}, step {step}")
    assert changes >= 3


def test_hiding_a_students_submission_writes_only_around_their_rows(competition, make_user,
                                                                    instructor):
    """No full rebuild: hiding one student's best among 30 students deletes no other row."""
    rng = random.Random(11)
    track = competition.tracks.get(slug="mnist")
    students = [make_user(f"s{i}") for i in range(30)]
    subs = [write(track, student, rng) for student in students]
    target = subs[0]
    assert target.status == Status.SCORED
    with CaptureQueriesContext(connection) as queries:
        coursework.hide(target, "copied", instructor)
    deletes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("DELETE")
               and "leaderboards_leaderboardentry" in q["sql"]]
    # A full rebuild deletes the whole track's rows with one unconditional filter on the track.
    assert not any('"id" IN' not in sql and "pareto" not in sql for sql in deletes), deletes
    assert not LeaderboardEntry.objects.filter(track=track, submission=target).exclude(
        category="pareto").exists()
    incremental = stored(track)
    rebuild_track(track)
    assert stored(track) == incremental
