"""The score write's SQL, counted: ``lifecycle.record_scorecard`` as a worker calls it (claim token,
track lock, Score row, the incremental leaderboard update, the integrity check after commit) costs
a fixed number of queries that does not grow with the track, and none of them scans a table.

The counts are the ones reached in issue 13's write-path work (``docs/deploy.md``, "Score
writes"); a change that adds a query to every score write fails here and has to say why.
On PostgreSQL only: the plans checked are PostgreSQL's, and it is the production database.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from submissions import lifecycle
from submissions.models import Status, Submission
from tests.platform.helpers import scorecard

pytestmark = [pytest.mark.django_db]

# What one score write may cost, in statements (SAVEPOINT/RELEASE of the write's transaction
# included, as the test runs inside the test's transaction):
# - a score that changes no board: the lock of the track and the submission, the Score INSERT,
#   the submission UPDATE, the participant, their candidates, the course rules (four queries),
#   their rows and the stored fronts (one query), and after commit the integrity check (two);
# - a new best that moves the student up one board after another rewrites a window per board.
NOTHING_CHANGES = 15
NEW_BEST = 58


def _pending(track, user) -> int:
    return Submission.objects.create(
        track=track, user=user, sha256="%064x" % (user.pk * 1000 + Submission.objects.count()),
        size_bytes=1, artifact_path="x.onnx", status=Status.SCORING, attempts=1).pk


def _write(track, user, card, django_capture_on_commit_callbacks) -> list[str]:
    submission_id = _pending(track, user)
    with CaptureQueriesContext(connection) as queries:
        with django_capture_on_commit_callbacks(execute=True):
            assert lifecycle.record_scorecard(submission_id, 1, card) == Status.SCORED
    return [q["sql"] for q in queries.captured_queries]


@pytest.fixture
def board(competition, make_user, django_capture_on_commit_callbacks):
    if connection.vendor != "postgresql":
        pytest.skip("the write path's queries are pinned on PostgreSQL (set DATABASE_URL)")
    track = competition.tracks.get(slug="mnist")
    students = [make_user(f"s{i}") for i in range(12)]
    for i, student in enumerate(students):
        _write(track, student, scorecard(accuracy=0.80 + i / 100, latency_ms=1.0 + i / 10,
                                         size_bytes=30_000 + 1000 * i),
               django_capture_on_commit_callbacks)
    return track, students


def test_a_score_that_changes_no_board_costs_a_fixed_number_of_queries(
        board, django_capture_on_commit_callbacks):
    track, students = board
    # Worse than the student's best everywhere, and dominated on the Pareto front.
    sql = _write(track, students[5], scorecard(accuracy=0.6, latency_ms=50.0, size_bytes=900_000),
                 django_capture_on_commit_callbacks)
    assert len(sql) <= NOTHING_CHANGES, "\n".join(sql)
    # Nothing is written to the leaderboard, and the track's version is left alone.
    assert not [s for s in sql if "leaderboards_leaderboardentry" in s
                and not s.lstrip().upper().startswith("SELECT")], sql
    assert not [s for s in sql if s.startswith('UPDATE "competitions_track"')], sql
    # One INSERT of the Score (its limits checked first), not an INSERT and an UPDATE.
    assert not [s for s in sql if s.startswith('UPDATE "submissions_score"')], sql


def test_a_new_best_costs_a_bounded_number_of_queries(board, django_capture_on_commit_callbacks):
    track, students = board
    ann = students[0]  # last on every board but size
    sql = _write(track, ann, scorecard(accuracy=0.99, latency_ms=0.5, size_bytes=10_000),
                 django_capture_on_commit_callbacks)
    assert len(sql) <= NEW_BEST, "\n".join(sql)
    from leaderboards.models import LeaderboardEntry

    first = LeaderboardEntry.objects.get(track=track, split="public", category="accuracy",
                                         position=1)
    assert first.user_id == ann.pk


def test_the_write_path_reads_by_index_at_scale(board, django_capture_on_commit_callbacks):
    """Every read of a score write is planned on an index once the table is large (the planner is
    told so: sequential scans off makes it pick an index wherever one serves the query)."""
    track, students = board
    submission_id = _pending(track, students[3])
    # With a weights fingerprint, as validation records it: the copy check looks it up too.
    Submission.objects.filter(pk=submission_id).update(
        validation_report={"info": {"weights_sha256": "b" * 64}})
    with CaptureQueriesContext(connection) as queries:
        with django_capture_on_commit_callbacks(execute=True):
            lifecycle.record_scorecard(submission_id, 1, scorecard(accuracy=0.7))
    reads = [q["sql"] for q in queries.captured_queries
             if q["sql"].lstrip().upper().startswith("SELECT") and "FOR UPDATE" not in q["sql"]]
    assert [sql for sql in reads if "weights_sha256" in sql], reads
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        scanned = []
        for sql in reads:
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            # Tables of the course rules hold a handful of rows per track; the others must not
            # be read whole.
            if any(f"Seq Scan on {table}" in plan for table in (
                    "submissions_submission", "submissions_score",
                    "leaderboards_leaderboardentry")):
                scanned.append((sql, plan))
    assert scanned == [], scanned
