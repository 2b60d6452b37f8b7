"""The scorecard contract and the latency protocol's rules."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from evaluator.latency import (
    LatencyProtocol,
    block_statistics,
    interleaved_samples,
    measure_latency,
    measure_throughput,
    summarize_basket,
    time_interleaved,
)
from evaluator.reference import reference_basket, reference_input
from evaluator.runtime import make_session
from evaluator.scoring import FAILURE_KINDS, SCORECARD_KEYS, ScoringError, score
from evaluator.tasks import TASKS
from evaluator.validation import validate
from tests.evaluator import model_zoo

QUICK = LatencyProtocol.quick()
PROVENANCE_KEYS = {
    "model_sha256", "dataset_sha256", "evaluator_version", "onnxruntime_version", "onnx_version",
    "numpy_version", "cpu_model", "hostname", "python_version", "cpu_features", "cpu_count",
    "hardware_class",
}


@pytest.fixture(scope="module")
def mnist_card(tiny_data_dir):
    return score(model_zoo.mnist_cnn(), "mnist", split="public", data_dir=tiny_data_dir,
                 protocol=QUICK, timeout_s=60)


def test_valid_scorecard_has_every_key_and_is_json(mnist_card):
    card = mnist_card
    assert set(card) == set(SCORECARD_KEYS)
    assert json.loads(json.dumps(card)) == card
    assert card["valid"] is True and card["error"] is None and card["failure_kind"] is None
    for key in ("accuracy", "latency_ms", "latency_p90_ms", "latency_mean_ms",
                "reference_latency_ms", "speed_index", "peak_memory_mb", "throughput"):
        assert isinstance(card[key], float) and card[key] > 0, key
    assert card["latency_p90_ms"] >= card["latency_ms"]
    # The median over blocks of the basket's ratios: near, not at, the ratio of the pooled
    # medians; with the quick protocol's 5 runs (blocks of one run) seen up to 28% apart under load.
    assert card["speed_index"] == pytest.approx(card["reference_latency_ms"] / card["latency_ms"],
                                                rel=0.5)
    assert card["bits_per_char"] is None
    low, high = card["speed_index_ci"]
    assert low <= card["speed_index"] <= high
    low, high = card["latency_ci_ms"]
    assert low <= card["latency_ms"] <= high
    numerics = card["numerics"]
    assert numerics["inputs"] == 64  # the first 64 of the public half (repeated when smaller)
    assert numerics["ok"] is True and numerics["class_agreement"] == 1.0
    assert numerics["max_abs_diff"] < 1e-3 < numerics["tolerance"]
    assert card["warnings"] == []
    assert card["timings"]["numerics"] > 0 and card["timings"]["probe_inference"] > 0


def test_provenance_and_protocol_are_recorded(mnist_card):
    import hashlib

    provenance = mnist_card["provenance"]
    assert set(provenance) == PROVENANCE_KEYS
    assert provenance["model_sha256"] == hashlib.sha256(model_zoo.mnist_cnn()).hexdigest()
    assert len(provenance["dataset_sha256"]) == 64
    assert provenance["onnxruntime_version"].startswith("1.")
    from evaluator.hardware import cpu_features, hardware_class

    assert provenance["cpu_features"] == cpu_features()
    assert provenance["hardware_class"] == hardware_class()
    assert provenance["cpu_count"] >= 1
    protocol = mnist_card["protocol"]
    assert {k: protocol[k] for k in QUICK.to_dict()} == QUICK.to_dict()
    assert protocol["reference_version"]
    sandbox = mnist_card["sandbox"]
    assert sandbox["pinned_cpu"] == sandbox["cpu"]
    assert sandbox["core_dumps"] is False and "network_isolated" in sandbox
    # Started as root, the child runs the model as nobody.
    assert sandbox["user"] == ("nobody" if os.getuid() == 0 else None)


def test_top_level_accuracy_follows_the_requested_split(mnist_card, tiny_data_dir):
    assert mnist_card["accuracy"] == mnist_card["splits"]["public"]["accuracy"]
    private = score(model_zoo.mnist_cnn(), "mnist", split="private", data_dir=tiny_data_dir,
                    protocol=QUICK)
    assert private["accuracy"] == private["splits"]["private"]["accuracy"]
    whole = score(model_zoo.mnist_cnn(), "mnist", split="all", data_dir=tiny_data_dir,
                  protocol=QUICK)
    halves = whole["splits"]
    pooled = (halves["public"]["accuracy"] * halves["public"]["count"]
              + halves["private"]["accuracy"] * halves["private"]["count"]) / (
        halves["public"]["count"] + halves["private"]["count"])
    assert whole["accuracy"] == pytest.approx(pooled)
    # Both halves are scored whatever split is asked for.
    assert whole["splits"] == private["splits"] == mnist_card["splits"]


def test_rejected_model_gives_a_full_scorecard_with_the_reasons(tiny_data_dir):
    card = score(model_zoo.custom_domain_op(), "mnist", data_dir=tiny_data_dir, protocol=QUICK)
    assert set(card) == set(SCORECARD_KEYS)
    assert card["valid"] is False and card["failure_kind"] == "invalid"
    assert "custom-domain" in card["error"] and card["validation"]["ok"] is False
    assert card["splits"]["public"] == {"accuracy": None, "bits_per_char": None, "count": None}
    assert card["raw_bytes"] > 0 and card["provenance"]["dataset_sha256"]
    assert set(FAILURE_KINDS) >= {card["failure_kind"]}


def test_tinygpt_scorecard_has_bits_per_char(tiny_data_dir):
    card = score(model_zoo.tinygpt_fixed_context(), "tinygpt", data_dir=tiny_data_dir,
                 protocol=QUICK)
    assert card["valid"], card["error"]
    assert card["context_length"] == 32
    assert card["bits_per_char"] > 0 and card["splits"]["private"]["bits_per_char"] > 0


def test_unprepared_dataset_is_a_platform_error(tmp_path):
    with pytest.raises(ScoringError, match="not prepared"):
        score(model_zoo.mnist_cnn(), "mnist", data_dir=tmp_path, protocol=QUICK)


def test_unknown_split_or_task_is_the_callers_error(tiny_data_dir):
    with pytest.raises(ValueError, match="split"):
        score(model_zoo.mnist_cnn(), "mnist", split="test", data_dir=tiny_data_dir)
    with pytest.raises(ValueError, match="task"):
        score(model_zoo.mnist_cnn(), "imagenet", data_dir=tiny_data_dir)


def test_model_given_as_a_path(tmp_path, tiny_data_dir):
    path = tmp_path / "model.onnx"
    path.write_bytes(model_zoo.mnist_linear())
    assert score(path, "mnist", data_dir=tiny_data_dir, protocol=QUICK)["valid"] is True
    with pytest.raises(ScoringError, match="could not read"):
        score(tmp_path / "missing.onnx", "mnist", data_dir=tiny_data_dir, protocol=QUICK)


# --- latency protocol ----------------------------------------------------------------------------

def _sleeper(seconds: float, calls: list):
    def run():
        calls.append(1)
        time.sleep(seconds)
    return run


def test_timed_runs_stop_only_when_both_count_and_duration_are_reached():
    protocol = LatencyProtocol(warmup_runs=2, min_runs=3, min_seconds=0.05, max_runs=1000,
                               max_seconds=5)
    model_calls, reference_calls = [], []
    model, reference = time_interleaved(_sleeper(0.002, model_calls),
                                        _sleeper(0.002, reference_calls), protocol)
    assert model["runs"] == reference["runs"] > 3  # 3 runs take ~12 ms < 50 ms
    assert len(model_calls) == model["runs"] + 2  # warm-up runs are not timed
    assert model["median_ms"] >= 2.0
    few = LatencyProtocol(warmup_runs=0, min_runs=4, min_seconds=0.0, max_runs=1000)
    assert time_interleaved(_sleeper(0, []), _sleeper(0, []), few)[0]["runs"] == 4
    capped = LatencyProtocol(warmup_runs=0, min_runs=50, min_seconds=10, max_runs=6)
    assert time_interleaved(_sleeper(0, []), _sleeper(0, []), capped)[0]["runs"] == 6


def test_noisy_measurement_is_repeated_and_recorded():
    calls = []

    def spiky():  # every fourth run is 20x slower: the mean runs far above the median
        calls.append(1)
        time.sleep(0.02 if len(calls) % 4 == 0 else 0.001)

    protocol = LatencyProtocol(warmup_runs=0, min_runs=8, min_seconds=0, max_runs=8,
                               max_attempts=3)
    result = measure_latency(spiky, _sleeper(0.001, []), protocol)
    assert len(result["attempts"]) == 3 and result["noisy"] is True


def _summary(median: float, ratio: float) -> dict:
    return {"median_ms": median, "p90_ms": median, "mean_ms": median * ratio, "runs": 10,
            "mean_over_median": ratio}


def test_the_steadiest_attempt_is_kept_and_a_steady_one_is_not_repeated(monkeypatch):
    import evaluator.latency as latency

    canned = iter([(_summary(2.0, 1.5), _summary(1.0, 1.0)), (_summary(2.2, 1.05), _summary(1.0, 1.0)),
                   (_summary(9.0, 1.0), _summary(1.0, 1.0))])
    monkeypatch.setattr(latency, "time_interleaved", lambda *args: next(canned))
    result = latency.measure_latency(None, None, LatencyProtocol(max_attempts=3))
    assert len(result["attempts"]) == 2  # the second attempt was steady: no third
    assert result["model"]["median_ms"] == 2.2 and result["noisy"] is False
    assert result["speed_index"] == pytest.approx(1.0 / 2.2)


def test_model_and_reference_take_turns_in_rounds_of_consecutive_runs():
    log: list[str] = []

    def runner(name: str, seconds: float):
        def run():  # a busy wait: sleep()'s timer slack reaches 10 ms on a loaded machine
            log.append(name)
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                pass
        return run

    protocol = LatencyProtocol(warmup_runs=1, min_runs=60, min_seconds=0.0, max_runs=1000,
                               round_ms=50.0, max_round_runs=20)
    model, reference, rounds = interleaved_samples(runner("m", 0.001), runner("r", 0.001), protocol)
    timed = log[2:]  # after one warm-up run of each
    assert sum(rounds) == len(model) == len(reference[0]) >= 60 and len(rounds) >= 3
    assert max(rounds) > 1  # ~50 ms rounds of ~1 ms runs
    first = rounds[0]
    assert timed[:first] == ["m"] * first and timed[first:2 * first] == ["r"] * first
    assert timed[2 * first] == "r"  # the order flips every round


def test_speed_index_cancels_a_slow_spell_that_hits_both_models():
    protocol = LatencyProtocol()
    # 20 rounds of 10 runs; in rounds 5-9 the machine is 50% slower for both models.
    slow = np.repeat([1.5 if 5 <= i < 10 else 1.0 for i in range(20)], 10)
    noise = np.random.default_rng(3).normal(1, 0.01, 200)
    model = (2e6 * slow * noise).astype(int).tolist()
    reference = (1e6 * slow * noise[::-1]).astype(int).tolist()
    figures = block_statistics(model, [reference], protocol, [10] * 20)
    assert figures["blocks"] == 20
    assert figures["speed_index"] == pytest.approx(0.5, rel=0.01)
    low, high = figures["speed_index_ci"]
    assert low <= 0.5 <= high and high - low < 0.02
    low, high = figures["latency_ci_ms"]
    assert 2.0 < low <= high < 3.0  # the raw median does feel the slow spell; the index does not
    # Too few rounds: equal blocks of the runs instead.
    assert block_statistics(model, [reference], protocol, [200])["blocks"] == protocol.blocks


def test_throughput_counts_samples_per_second():
    protocol = LatencyProtocol(throughput_min_runs=3, throughput_min_seconds=0.0)
    rate = measure_throughput(_sleeper(0.01, []), 64, protocol)
    assert 64 / 0.2 < rate < 64 / 0.01  # at most 6,400 samples/s: each run sleeps 10 ms


@pytest.mark.parametrize("task", sorted(TASKS))
def test_reference_baskets_are_fixed_valid_and_run(task):
    basket = reference_basket(task)
    assert len(basket) == 3 and len(set(basket)) == 3
    sizes = []
    for model in basket:
        assert validate(model, task).ok
        session = make_session(model)
        output = session.run(None, {"input": reference_input(task)})[0]
        assert output.shape[0] == 1 and output.shape[-1] == TASKS[task].num_classes
        sizes.append(len(model))
    assert sizes == sorted(sizes)  # smallest first, growing width
    # Built in code with fixed seeds: the very same bytes each time.
    reference_basket.cache_clear()
    assert reference_basket(task) == basket


def test_the_speed_index_is_the_geometric_mean_over_the_basket():
    protocol = LatencyProtocol()
    rng = np.random.default_rng(5)
    noise = rng.normal(1, 0.01, 200)
    model = (2e6 * noise).astype(int).tolist()
    members = [(1e6 * noise[::-1]).astype(int).tolist(), (8e6 * noise).astype(int).tolist()]
    figures = block_statistics(model, members, protocol, [10] * 20)
    # Against 1 ms and 8 ms members a 2 ms model is 0.5 and 4 times as fast: geometric mean 1.41.
    assert figures["speed_index"] == pytest.approx(np.sqrt(0.5 * 4.0), rel=0.01)
    summary = summarize_basket(members)
    assert summary["median_ms"] == pytest.approx(np.sqrt(1.0 * 8.0), rel=0.01)
    assert [round(m["median_ms"]) for m in summary["members"]] == [1, 8]


def test_a_basket_takes_turns_with_the_model_in_every_round():
    log: list[str] = []

    def runner(name: str):
        def run():
            log.append(name)
        return run

    protocol = LatencyProtocol(warmup_runs=0, min_runs=6, min_seconds=0.0, max_runs=6,
                               round_ms=0.0)
    model, members, rounds = interleaved_samples(runner("m"), [runner("a"), runner("b")],
                                                 protocol)
    assert len(model) == len(members[0]) == len(members[1]) == 6 and rounds == [1] * 6
    assert log[:6] == ["m", "a", "b", "b", "a", "m"]  # the order reverses every round


def test_copies_of_the_model_and_of_each_reference_take_turns_by_round():
    log: list[str] = []

    def runner(name: str):
        def run():
            log.append(name)
        return run

    protocol = LatencyProtocol(warmup_runs=0, min_runs=6, min_seconds=0.0, max_runs=6,
                               round_ms=0.0)
    model, members, rounds = interleaved_samples(
        [runner("m0"), runner("m1"), runner("m2")], [[runner("a0"), runner("a1")]], protocol)
    assert len(model) == len(members[0]) == 6
    # Round r runs copy r mod n of each side; the order of the sides reverses every round.
    assert log == ["m0", "a0", "a1", "m1", "m2", "a0", "a1", "m0", "m1", "a0", "a1", "m2"]
    assert LatencyProtocol.standard().copies == 3 and LatencyProtocol.quick().copies == 1
    # A scorecard's recorded protocol from before this field still loads.
    old = {k: v for k, v in LatencyProtocol().to_dict().items() if k != "copies"}
    assert LatencyProtocol.from_dict(old) == LatencyProtocol()


def test_an_attempt_on_a_shared_core_is_noisy_and_repeated(monkeypatch):
    import evaluator.latency as latency

    # Sleeping runs use no CPU: the thread had a small share of the wall clock, as when another
    # process takes turns on the scoring core.
    protocol = LatencyProtocol(warmup_runs=0, min_runs=4, min_seconds=0, max_runs=4,
                               max_attempts=2, round_ms=0.0)
    result = measure_latency(_sleeper(0.002, []), _sleeper(0.002, []), protocol)
    assert len(result["attempts"]) == 2 and result["noisy"] is True
    assert result["attempts"][0]["model"]["cpu_share"] < 0.5
    # Of canned attempts, the quiet one is kept even when a shared one looks less spiky.
    shared = ({**_summary(1.0, 1.0), "cpu_share": 0.5}, _summary(1.0, 1.0))
    quiet = ({**_summary(2.0, 1.05), "cpu_share": 0.97}, _summary(1.0, 1.0))
    canned = iter([shared, quiet])
    monkeypatch.setattr(latency, "time_interleaved", lambda *args: next(canned))
    kept = latency.measure_latency(None, None, LatencyProtocol(max_attempts=3))
    assert len(kept["attempts"]) == 2 and kept["model"]["median_ms"] == 2.0
    assert kept["noisy"] is False
