"""``python -m evaluator``: exit codes, JSON keys and readable output, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.evaluator import model_zoo

ISSUE_KEYS = {
    "task", "split", "valid", "error", "accuracy", "bits_per_char", "latency_ms", "latency_p90_ms",
    "speed_index", "size_bytes", "raw_bytes", "params", "nonzero_params", "peak_memory_mb",
    "throughput", "provenance",
}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evaluator", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-models")
    paths = {}
    for name, build in (("good", model_zoo.mnist_cnn), ("custom", model_zoo.custom_domain_op),
                        ("nan", model_zoo.nan_outputs), ("endless", model_zoo.endless_loop)):
        paths[name] = folder / f"{name}.onnx"
        paths[name].write_bytes(build())
    return paths


def test_score_json_exit_0_with_the_issue_keys(models, tiny_data_dir):
    done = _run("score", models["good"], "--task", "mnist", "--data-dir", tiny_data_dir,
                "--json", "--quick", "--split", "public")
    assert done.returncode == 0, done.stderr
    card = json.loads(done.stdout)
    assert ISSUE_KEYS <= set(card)
    assert card["valid"] is True and card["split"] == "public"
    assert card["accuracy"] == card["splits"]["public"]["accuracy"]


def test_score_table_for_people(models, tiny_data_dir):
    done = _run("score", models["good"], "--task", "mnist", "--data-dir", tiny_data_dir, "--quick")
    assert done.returncode == 0, done.stderr
    for words in ("accuracy", "speed index", "latency median", "public half", "95% CI",
                  "numerics", "hardware class"):
        assert words in done.stdout


def test_latency_limit_sets_the_probe_deadline(models, tiny_data_dir):
    done = _run("score", models["endless"], "--task", "mnist", "--data-dir", tiny_data_dir,
                "--json", "--quick", "--latency-limit-ms", "300")
    assert done.returncode == 2, done.stderr
    card = json.loads(done.stdout)
    assert card["failure_kind"] == "too_slow" and "300 ms" in card["error"]
    assert "still running after 6.0 s" in card["error"]  # 20 x 300 ms
    assert card["sandbox"]["probe_deadline_s"] == 6.0


def test_calibrate_times_the_reference_in_the_sandbox():
    done = _run("calibrate", "--task", "mnist", "--quick", "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["calibrations"]
    from evaluator.hardware import cpu_features, hardware_class

    assert row["task"] == "mnist" and row["hardware_class"] == hardware_class()
    assert row["cpu_features"] == cpu_features()
    low, high = row["reference_latency_ci_ms"]
    assert 0 < low <= row["reference_latency_ms"] <= high
    assert row["pinned_cpu"] is not None
    table = _run("calibrate", "--task", "cifar10", "--quick")
    assert table.returncode == 0 and "cifar10" in table.stdout and "reference latency" in table.stdout


def test_rejected_model_exits_2_and_says_why(models, tiny_data_dir):
    done = _run("score", models["custom"], "--task", "mnist", "--data-dir", tiny_data_dir, "--json")
    assert done.returncode == 2
    card = json.loads(done.stdout)
    assert card["valid"] is False and "custom-domain" in card["error"]


def test_model_failing_in_the_sandbox_exits_2(models, tiny_data_dir):
    done = _run("score", models["nan"], "--task", "mnist", "--data-dir", tiny_data_dir, "--quick")
    assert done.returncode == 2
    assert "FAILED (bad_output)" in done.stdout and "NaN" in done.stdout


def test_unprepared_data_is_an_internal_error_exit_1(models, tmp_path):
    done = _run("score", models["good"], "--task", "mnist", "--data-dir", tmp_path, "--json")
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["internal_error"] is True, done.stderr
    assert "datasets import" in done.stderr


def test_validate_exit_codes(models):
    good = _run("validate", models["good"], "--task", "mnist")
    assert good.returncode == 0 and "OK" in good.stdout
    bad = _run("validate", models["custom"], "--task", "mnist", "--json")
    assert bad.returncode == 2
    assert json.loads(bad.stdout)["problems"][0]["rule"] == "custom-domain"


def test_missing_file_and_bad_usage_exit_2(tmp_path):
    assert _run("score", tmp_path / "nope.onnx", "--task", "mnist").returncode == 2
    assert _run("score", tmp_path / "nope.onnx", "--task", "imagenet").returncode == 2


def test_datasets_subcommand_is_dispatched(tiny_data_dir):
    done = _run("datasets", "info", "--data-dir", tiny_data_dir)
    assert done.returncode == 0, done.stderr
    assert "mnist" in done.stdout and "yes" in done.stdout
