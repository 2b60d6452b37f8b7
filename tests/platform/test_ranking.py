"""The ranking rules of SPEC §4, called directly with plain data."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from competitions.limits import Limits, over_limit_reasons
from leaderboards.rules import (
    ACCURACY,
    EFFICIENCY,
    SIZE,
    SPEED,
    Candidate,
    best_per_participant,
    dominates,
    intervals_overlap,
    is_eligible,
    pareto_front,
    rank_category,
    sort_key,
    speed_tie_groups,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = Limits(max_size_bytes=10_000_000, max_latency_ms=100.0, accuracy_floor=0.5)


def cand(sid, who, acc, lat, size, minutes=0, baseline=False, **speed):
    return Candidate(submission_id=sid, participant=who, submitted_at=T0 + timedelta(minutes=minutes),
                     accuracy=acc, latency_ms=lat, size_bytes=size, is_baseline=baseline, **speed)


def fast(sid, who, index, low=None, high=None, size=1000, minutes=0, lat=5.0, **extra):
    """A candidate ranked for speed by ``index`` with the interval [low, high]."""
    return cand(sid, who, 0.9, lat, size, minutes=minutes, speed_index=index,
                speed_index_low=low, speed_index_high=high, **extra)


def ranks(rows):
    return [(row.candidate.submission_id, row.rank, row.tied) for row in rows]


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


# --- Speed: the speed index with its interval (issue 9) ------------------------------------------


def test_speed_ranks_on_the_speed_index_not_the_raw_latency():
    # ann's raw latency is lower (a quiet worker), but bob is faster against the reference.
    rows = rank_category([fast(1, "ann", 1.5, lat=2.0), fast(2, "bob", 2.5, lat=3.0)], SPEED, LIMITS)
    assert ranks(rows) == [(2, 1, False), (1, 2, False)]
    # A student's own best for speed is their highest speed index.
    best = best_per_participant([fast(3, "cat", 1.1), fast(4, "cat", 1.9), fast(5, "cat", 1.4)],
                                SPEED, LIMITS)
    assert [c.submission_id for c in best] == [4]


def test_overlapping_intervals_tie_with_one_rank_and_the_spec_tie_break_inside():
    rows = rank_category([
        fast(1, "ann", 2.00, 1.90, 2.10, size=900),
        fast(2, "bob", 1.95, 1.85, 2.05, size=500),   # overlaps ann: tied, smaller so shown first
        fast(3, "cat", 1.50, 1.40, 1.60),             # clear of both
        fast(4, "dan", 1.45, 1.35, 1.52),             # overlaps cat
    ], SPEED, LIMITS)
    assert ranks(rows) == [(2, 1, True), (1, 1, True), (3, 3, True), (4, 3, True)]


def test_a_tie_of_equal_size_goes_to_the_earlier_submission():
    rows = rank_category([fast(1, "ann", 2.0, 1.9, 2.1, minutes=5),
                          fast(2, "bob", 1.9, 1.8, 2.0, minutes=1)], SPEED, LIMITS)
    assert ranks(rows) == [(2, 1, True), (1, 1, True)]


def test_tie_groups_compare_with_the_leader_not_the_row_above():
    # b overlaps a and c overlaps b, but c does not overlap a: c leads a new group.
    a, b, c = (fast(1, "ann", 2.0, 1.9, 2.1), fast(2, "bob", 1.85, 1.75, 1.95),
               fast(3, "cat", 1.7, 1.6, 1.8))
    assert [[x.submission_id for x in g] for g in speed_tie_groups([c, a, b])] == [[1, 2], [3]]
    assert ranks(rank_category([c, b, a], SPEED, LIMITS)) == [(1, 1, True), (2, 1, True),
                                                               (3, 3, False)]


def test_rows_without_an_interval_rank_on_their_point_value():
    inside = fast(2, "bob", 1.95)          # no interval, inside ann's: tied with ann
    outside = fast(3, "cat", 1.80)         # no interval, outside: ranked alone
    twin = fast(4, "dan", 1.80, size=100)  # the same point as cat: tied, smaller first
    rows = rank_category([fast(1, "ann", 2.0, 1.9, 2.1), inside, outside, twin], SPEED, LIMITS)
    assert ranks(rows) == [(1, 1, True), (2, 1, True), (4, 3, True), (3, 3, True)]
    # Points with no interval and different values never tie.
    rows = rank_category([fast(5, "eve", 1.30), fast(6, "fay", 1.31)], SPEED, LIMITS)
    assert ranks(rows) == [(6, 1, False), (5, 2, False)]


def test_rows_without_a_speed_index_rank_after_those_with_one_on_raw_latency():
    rows = rank_category([
        cand(1, "ann", 0.9, 1.0, 100),            # no speed index: fast raw latency, still after
        fast(2, "bob", 0.5, 0.4, 0.6, lat=50.0),
        cand(3, "cat", 0.9, 3.0, 100),
    ], SPEED, LIMITS)
    assert ranks(rows) == [(2, 1, False), (1, 2, False), (3, 3, False)]


def test_baselines_sit_between_speed_groups_unranked_and_never_tie():
    rows = rank_category([
        fast(1, "ann", 2.0, 1.9, 2.1),
        fast(9, "teacher", 1.98, 1.0, 3.0, baseline=True),  # overlaps everyone, ties no one
        fast(2, "bob", 1.5, 1.45, 1.55),
        fast(8, "teacher", 3.0, 2.9, 3.1, baseline=True),
    ], SPEED, LIMITS)
    assert ranks(rows) == [(8, None, False), (1, 1, False), (9, None, False), (2, 2, False)]


def test_accuracy_ties_break_on_the_speed_index():
    rows = rank_category([fast(1, "ann", 1.2), fast(2, "bob", 1.8)], ACCURACY, LIMITS)
    assert ranks(rows) == [(2, 1, False), (1, 2, False)]


def test_intervals_overlap_is_closed_and_symmetric():
    assert intervals_overlap((1.0, 2.0), (2.0, 3.0)) and intervals_overlap((2.0, 3.0), (1.0, 2.0))
    assert not intervals_overlap((1.0, 1.99), (2.0, 3.0))
    assert intervals_overlap((1.5, 1.5), (1.0, 2.0))


def test_latency_limit_is_checked_on_normalized_latency_when_there_is_one():
    # A busy worker: raw 150 ms, but 80 ms against the class's reference: within the limit.
    assert over_limit_reasons(1000, 150.0, LIMITS, normalized_latency_ms=80.0) == []
    # A quiet worker: raw 60 ms, normalized 120 ms: over, and the words name both figures.
    assert over_limit_reasons(1000, 60.0, LIMITS, normalized_latency_ms=120.0) == [
        "normalized latency 120.00 ms (raw median 60.00 ms on the scoring worker) is over the "
        "limit of 100.00 ms"]
    busy = cand(1, "ann", 0.9, 150.0, 1000, speed_index=1.0, normalized_latency_ms=80.0)
    quiet = cand(2, "bob", 0.9, 60.0, 1000, speed_index=1.0, normalized_latency_ms=120.0)
    assert is_eligible(busy, SPEED, LIMITS) and not is_eligible(quiet, ACCURACY, LIMITS)
    assert ids(rank_category([busy, quiet], ACCURACY, LIMITS)) == [1]


def test_pareto_front_uses_normalized_latency():
    # Raw latency says b is faster; normalized says a is faster and as small and as accurate.
    a = cand(1, "ann", 0.9, 9.0, 100, normalized_latency_ms=2.0)
    b = cand(2, "bob", 0.9, 3.0, 100, normalized_latency_ms=4.0)
    assert [c.submission_id for c in pareto_front([a, b], LIMITS)] == [1]


@pytest.mark.parametrize("seed", range(20))
def test_speed_ranks_follow_the_tie_group_rule_on_random_intervals(seed):
    rng = random.Random(seed)
    pool = []
    for i in range(40):
        index = rng.choice([1.0, 1.1, 1.2, 1.5, 2.0, 2.05])
        width = rng.choice([0.0, 0.02, 0.1, 0.3])
        bounds = {} if rng.random() < 0.2 else {"low": index - width, "high": index + width}
        pool.append(fast(i, f"p{i}", index, size=rng.choice([100, 200]),
                         minutes=rng.randint(0, 5), **bounds))
    rows = rank_category(pool, SPEED, LIMITS)
    assert sorted(r.candidate.submission_id for r in rows) == list(range(40))
    # Rebuild the groups from the ranks and check the rule: every member overlaps its leader
    # (the group's highest speed index, earliest by the tie-break), each leader misses the
    # previous leader, the ranks count the rows above, and a group is in tie-break order.
    groups: dict[int, list] = {}
    for row in rows:
        groups.setdefault(row.rank, []).append(row.candidate)
    above, previous_leader = 0, None
    for rank in sorted(groups):
        members = groups[rank]
        assert rank == above + 1
        above += len(members)
        leader = min(members, key=lambda c: sort_key(c, SPEED))
        for member in members:
            assert intervals_overlap(leader.speed_interval, member.speed_interval)
            assert (len(members) > 1) == next(r.tied for r in rows if r.candidate is member)
        assert members == sorted(members, key=lambda c: (c.size_bytes, c.submitted_at,
                                                         c.submission_id))
        if previous_leader is not None:
            assert previous_leader.speed_index >= leader.speed_index
            assert not intervals_overlap(previous_leader.speed_interval, leader.speed_interval)
        previous_leader = leader
