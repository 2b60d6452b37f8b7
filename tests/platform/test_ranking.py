"""The ranking rules of SPEC §4, called directly with plain data."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from leaderboards.ranking import (
    ACCURACY,
    EFFICIENCY,
    SIZE,
    SPEED,
    Candidate,
    Limits,
    best_per_participant,
    dominates,
    is_eligible,
    over_limit_reasons,
    pareto_front,
    rank_category,
    sort_key,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = Limits(max_size_bytes=10_000_000, max_latency_ms=100.0, accuracy_floor=0.5)


def cand(sid, who, acc, lat, size, minutes=0, baseline=False):
    return Candidate(submission_id=sid, participant=who, submitted_at=T0 + timedelta(minutes=minutes),
                     accuracy=acc, latency_ms=lat, size_bytes=size, is_baseline=baseline)


def ids(rows):
    return [row.candidate.submission_id for row in rows]


def test_accuracy_ranks_highest_first_and_keeps_each_students_best():
    rows = rank_category([
        cand(1, "ann", 0.90, 5, 1000),
        cand(2, "ann", 0.95, 5, 1000),
        cand(3, "bob", 0.93, 5, 1000),
    ], ACCURACY, LIMITS)
    assert ids(rows) == [2, 3]
    assert [row.rank for row in rows] == [1, 2]


def test_over_limit_submissions_are_never_ranked():
    too_big = cand(1, "ann", 0.99, 5, 10_000_001)
    too_slow = cand(2, "bob", 0.99, 100.5, 1000)
    fine = cand(3, "cid", 0.60, 5, 1000)
    rows = rank_category([too_big, too_slow, fine], ACCURACY, LIMITS)
    assert ids(rows) == [3]
    assert over_limit_reasons(10_000_001, 5, LIMITS) == [
        "size 10.00 MB is over the limit of 10.00 MB"]
    assert "latency 100.50 ms" in over_limit_reasons(1000, 100.5, LIMITS)[0]
    assert over_limit_reasons(10_000_000, 100.0, LIMITS) == []  # at the limit is within it


def test_accuracy_floor_applies_to_speed_size_efficiency_only():
    weak_but_fast = cand(1, "ann", 0.40, 1, 100)
    assert is_eligible(weak_but_fast, ACCURACY, LIMITS)
    for category in (SPEED, SIZE, EFFICIENCY):
        assert not is_eligible(weak_but_fast, category, LIMITS)
    assert is_eligible(cand(2, "bob", 0.50, 1, 100), SPEED, LIMITS)  # at the floor counts


def test_best_submission_differs_per_category():
    accurate = cand(1, "ann", 0.99, 50, 5_000_000)
    fast = cand(2, "ann", 0.80, 2, 4_000_000)
    small = cand(3, "ann", 0.70, 20, 100_000)
    pool = [accurate, fast, small]
    assert ids(rank_category(pool, ACCURACY, LIMITS)) == [1]
    assert ids(rank_category(pool, SPEED, LIMITS)) == [2]
    assert ids(rank_category(pool, SIZE, LIMITS)) == [3]
    # 0.70 / 0.1 MB = 7.0 per MB beats 0.99 / 5 MB and 0.80 / 4 MB
    assert ids(rank_category(pool, EFFICIENCY, LIMITS)) == [3]


def test_ties_break_on_next_categorys_metric_then_earlier_submission():
    # accuracy tie -> lower latency wins
    rows = rank_category([cand(1, "ann", 0.9, 9, 100), cand(2, "bob", 0.9, 3, 100)], ACCURACY, LIMITS)
    assert ids(rows) == [2, 1]
    # speed tie -> smaller size wins
    rows = rank_category([cand(1, "ann", 0.9, 3, 900), cand(2, "bob", 0.9, 3, 100)], SPEED, LIMITS)
    assert ids(rows) == [2, 1]
    # size tie -> higher efficiency (= higher accuracy at equal size) wins
    rows = rank_category([cand(1, "ann", 0.8, 3, 100), cand(2, "bob", 0.9, 3, 100)], SIZE, LIMITS)
    assert ids(rows) == [2, 1]
    # efficiency tie wraps to accuracy: same ratio, the more accurate wins
    rows = rank_category([cand(1, "ann", 0.6, 3, 600_000), cand(2, "bob", 0.9, 3, 900_000)],
                         EFFICIENCY, LIMITS)
    assert ids(rows) == [2, 1]
    # full tie -> the earlier submission wins
    rows = rank_category([cand(7, "ann", 0.9, 3, 100, minutes=5),
                          cand(8, "bob", 0.9, 3, 100, minutes=1)], ACCURACY, LIMITS)
    assert ids(rows) == [8, 7]
    assert [row.rank for row in rows] == [1, 2]


def test_a_students_own_tie_keeps_the_earlier_submission():
    best = best_per_participant([cand(5, "ann", 0.9, 3, 100, minutes=9),
                                 cand(4, "ann", 0.9, 3, 100, minutes=2)], ACCURACY, LIMITS)
    assert [c.submission_id for c in best] == [4]


def test_baselines_are_placed_in_order_but_never_ranked():
    rows = rank_category([
        cand(1, "ann", 0.80, 5, 100),
        cand(2, "teacher", 0.90, 5, 100, baseline=True),
        cand(3, "teacher", 0.85, 5, 100, baseline=True),
        cand(4, "bob", 0.70, 5, 100),
    ], ACCURACY, LIMITS)
    assert ids(rows) == [2, 3, 1, 4]
    assert [row.rank for row in rows] == [None, None, 1, 2]
    # a student's row is never displaced from rank 1 by a better baseline
    assert rows[2].candidate.participant == "ann"


def test_pareto_front_keeps_only_undominated_points():
    a = cand(1, "ann", 0.95, 10, 1000)   # most accurate
    b = cand(2, "bob", 0.90, 2, 1000)    # fastest
    c = cand(3, "cid", 0.80, 5, 100)     # smallest
    d = cand(4, "dan", 0.85, 10, 1000)   # dominated by a (and b)
    e = cand(5, "eve", 0.99, 500, 1000)  # over the latency limit: not on the front
    front = pareto_front([a, b, c, d, e], LIMITS)
    assert sorted(x.submission_id for x in front) == [1, 2, 3]


def test_pareto_front_counts_identical_points_once():
    front = pareto_front([cand(1, "ann", 0.9, 2, 100, minutes=1),
                          cand(2, "bob", 0.9, 2, 100, minutes=0)], LIMITS)
    assert [x.submission_id for x in front] == [2]


def test_unknown_category_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown category 'fame'"):
        sort_key(cand(1, "ann", 0.9, 1, 1), "fame")


def brute_force_front(candidates, limits):
    within = [c for c in candidates if not over_limit_reasons(c.size_bytes, c.latency_ms, limits)]
    front = []
    for c in within:
        beaten = any(dominates(o, c) for o in within)
        twin_first = any((o.accuracy, o.latency_ms, o.size_bytes) == (c.accuracy, c.latency_ms,
                                                                       c.size_bytes)
                         and (o.submitted_at, o.submission_id) < (c.submitted_at, c.submission_id)
                         for o in within)
        if not beaten and not twin_first:
            front.append(c.submission_id)
    return sorted(front)


@pytest.mark.parametrize("seed", range(20))
def test_pareto_front_matches_the_definition_on_random_points(seed):
    rng = random.Random(seed)
    # Few distinct values, so ties on one, two or all three metrics are common.
    pool = [cand(i, f"p{i % 7}", rng.choice([0.5, 0.6, 0.7, 0.8, 0.9]),
                 rng.choice([1.0, 2.0, 3.0, 150.0]), rng.choice([100, 200, 300, 400]),
                 minutes=rng.randint(0, 5)) for i in range(60)]
    assert sorted(c.submission_id for c in pareto_front(pool, LIMITS)) == brute_force_front(
        pool, LIMITS)
