"""The numerics check: the scoring session against the same graph with optimizations off."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator import _evaluate, numerics
from evaluator.datasets import load_hidden
from evaluator.runtime import make_session
from evaluator.sandbox import ChildOutcome, SandboxLimits, StageDeadlines
from evaluator.scoring import SCORECARD_KEYS, _finish
from evaluator.tasks import get_task
from tests.evaluator import model_zoo


def test_tolerance_sits_between_exact_kernels_and_saturating_ones():
    # Measured on the shipped baselines (docs/evaluator.md, section 3b): logits up to ~7.5 for the
    # image baselines, 14.3 for tinygpt.
    for scale in (5.5, 7.5, 14.3):
        tolerance = numerics.tolerance_for(np.array([scale]))
        assert 0.0075 * 5 < tolerance < 0.71 / 5  # 5x over exact INT8, 5x under saturated INT8


def test_compare_reports_difference_agreement_and_verdict():
    reference = np.array([[1.0, 2.0, 0.5], [3.0, 0.0, 1.0]])
    close = numerics.compare(reference + 1e-4, reference)
    assert close["ok"] is True and close["class_agreement"] == 1.0 and close["inputs"] == 2
    assert close["max_abs_diff"] == pytest.approx(1e-4)
    far = numerics.compare(reference + np.array([[1.2, 0, 0], [0, 0, 0]]), reference)
    assert far["ok"] is False and far["class_agreement"] == 0.5
    assert far["max_abs_diff"] == pytest.approx(1.2)
    assert "optimizations off" in far["reference"]


def test_warning_names_the_int8_remedy_or_the_float_cause():
    check = numerics.compare(np.array([[2.2, 1.0]]), np.array([[1.0, 1.5]]))
    int8 = numerics.warning_for(check, quantized=True, hardware_class="x86_64-avx2")
    assert "INT8 kernels saturate on this CPU (x86_64-avx2)" in int8
    assert "7 bits" in int8 and "1.2" in int8 and "0% of 1 sample" in int8
    plain = numerics.warning_for(check, quantized=False, hardware_class="x86_64-avx2")
    assert "INT8" not in plain and "optimized kernels" in plain


def test_quantized_graphs_are_recognized():
    assert numerics.is_quantized(model_zoo.mnist_qdq_int8())
    assert numerics.is_quantized(model_zoo.mnist_qgemm_int8())
    assert not numerics.is_quantized(model_zoo.mnist_cnn())


def test_check_runs_real_sessions_and_catches_a_session_that_disagrees(tiny_data_dir):
    task = get_task("mnist")
    hidden = load_hidden("mnist", "public", tiny_data_dir)
    same = _evaluate.ModelRunner(make_session(model_zoo.mnist_qdq_int8()), task)
    agreed = _evaluate.check_numerics(same, model_zoo.mnist_qdq_int8(), task, hidden, 0)
    assert agreed["ok"] is True and agreed["quantized"] is True
    assert agreed["inputs"] == numerics.SAMPLE_IMAGES and agreed["max_abs_diff"] < 0.05
    # A scoring session that computes something else than the graph it is compared with.
    other = _evaluate.ModelRunner(make_session(model_zoo.mnist_linear()), task)
    caught = _evaluate.check_numerics(other, model_zoo.mnist_cnn(), task, hidden, 0)
    assert caught["ok"] is False and caught["max_abs_diff"] > caught["tolerance"]


def _metrics(check: dict) -> dict:
    summary = {"median_ms": 1.0, "p90_ms": 1.1, "mean_ms": 1.0, "runs": 100,
               "mean_over_median": 1.0}
    tally = {"correct": 5, "count": 10, "nll_nats": 0.0}
    return {
        "splits": {"public": tally, "private": tally},
        "latency": {"model": summary, "reference": {**summary, "median_ms": 0.5},
                    "speed_index": 0.5, "speed_index_ci": [0.49, 0.51],
                    "latency_ci_ms": [0.98, 1.02], "attempts": [], "noisy": False},
        "peak_memory_mb": 1.0, "peak_address_space_mb": 100.0, "throughput": 10.0,
        "context_length": None, "stage_seconds": {"numerics": 0.01}, "probe_seconds": 0.001,
        "numerics": check,
        "versions": {"onnxruntime": "1", "onnx": "1", "numpy": "1"},
    }


def test_a_failed_check_warns_on_a_valid_scorecard():
    card = dict.fromkeys(SCORECARD_KEYS)
    card.update(split="all", warnings=[], sandbox={},
                provenance={"hardware_class": "x86_64-avx2"})
    check = {**numerics.compare(np.array([[2.2, 1.0]]), np.array([[1.0, 1.5]])), "quantized": True}
    outcome = ChildOutcome(result={"status": "ok", "metrics": _metrics(check)},
                           stages=[{"stage": "ready"}], returncode=0)
    limits = SandboxLimits().resolved()
    card = _finish(card, outcome, limits, False, 100.0, StageDeadlines(probe_s=5.0))
    assert card["valid"] is True  # scored (and rankable) all the same
    assert card["numerics"]["ok"] is False and "quantized" not in card["numerics"]
    (warning,) = card["warnings"]
    assert "INT8 kernels saturate on this CPU (x86_64-avx2)" in warning
    assert card["speed_index_ci"] == [0.49, 0.51] and card["latency_ci_ms"] == [0.98, 1.02]


def test_integer_kernel_graphs_are_checked_against_onnxs_reference_evaluator(tmp_path):
    # onnxruntime runs MatMulInteger with the same kernels optimized or not, so only numpy's exact
    # integer arithmetic can show their saturation.
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, target = tmp_path / "float.onnx", tmp_path / "dynamic.onnx"
    source.write_bytes(model_zoo.mnist_linear())
    quantize_dynamic(source, target, weight_type=QuantType.QInt8)
    model_bytes = target.read_bytes()
    assert numerics.is_quantized(model_bytes)
    run, name = numerics.reference_runner(model_bytes)
    assert name == numerics.EVALUATOR_NAME
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    session = make_session(model_bytes)
    exact, used = run(x)
    assert used == name
    check = numerics.compare(session.run(None, {session.get_inputs()[0].name: x})[0], exact, used)
    assert check["reference"] == numerics.EVALUATOR_NAME and check["inputs"] == 4
    assert check["tolerance"] > 1.0  # run-time activation scales: see docs/evaluator.md, 3b
    # A float or QDQ graph keeps the cheap reference: onnxruntime with optimizations off.
    assert numerics.reference_runner(model_zoo.mnist_qdq_int8())[1] == numerics.REFERENCE_NAME


def test_scoring_a_dynamic_int8_model_uses_the_evaluator_inside_the_sandbox(tmp_path,
                                                                            tiny_data_dir):
    # In the child, as nobody: the evaluator's lazy imports must have happened before root was
    # dropped, or the check would silently fall back.
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from evaluator.latency import LatencyProtocol
    from evaluator.scoring import score

    source, target = tmp_path / "float.onnx", tmp_path / "dynamic.onnx"
    source.write_bytes(model_zoo.mnist_linear())
    quantize_dynamic(source, target, weight_type=QuantType.QInt8)
    card = score(target, "mnist", data_dir=tiny_data_dir, protocol=LatencyProtocol.quick(),
                 timeout_s=120)
    assert card["valid"], card["error"]
    assert card["numerics"]["reference"] == numerics.EVALUATOR_NAME
    assert card["numerics"]["inputs"] == numerics.EVALUATOR_IMAGES
