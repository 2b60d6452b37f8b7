"""The shipped INT8 baselines compute the same numbers on x86 CPUs without VNNI as on this one.

onnxruntime's uint8 x int8 kernel for AVX2 without VNNI (AMD Zen 3, Intel before Cascade Lake)
adds pairs of products in saturating int16, so a model with full 8-bit weights scores differently
there. These tests run each baseline's optimized session (the scorer's settings) under
``qemu-x86_64 -cpu Haswell``, where onnxruntime really takes those AVX2 kernels, on a small fixed
sample of the hidden test set, and compare it with the graph's exact semantics computed natively
(``portability.reference_outputs``: optimizations off for QDQ graphs, onnx's reference evaluator
for dynamic INT8). As a control that the check can fail, models quantized with full 8-bit weights
(scheme ``u8s8``) must saturate there (and natively too exactly when this CPU lacks VNNI).

Without qemu-user they skip, and fail under ``CI=true`` (``.ci/run`` installs it).
"""

from __future__ import annotations

import platform

import numpy as np
import onnx
import pytest

from evaluator.hardware import cpu_features
from reference_models.compress.portability import (
    compare,
    qemu_path,
    reference_outputs,
    run_emulated,
    run_session,
    within_tolerance,
)
from tests.conftest import REPO_ROOT, require

BASELINES = REPO_ROOT / "reference_models" / "baselines"
SHIPPED = sorted(p.stem for p in BASELINES.glob("*_int8.onnx"))
TASKS = {"cifar10_cnn_int8": "cifar10", "cifar10_cnn_pruned_int8": "cifar10",
         "mnist_mlp_int8": "mnist", "tinygpt_int8": "tinygpt"}
# Inputs per model: the emulated float layers are slow (the GPT's attention most of all).
SAMPLE = {"cifar10": 20, "mnist": 100, "tinygpt": 2}
BATCH = 50  # the same batches natively and emulated: dynamic INT8 ranges are per batch

# Allowed difference between the emulated AVX2 run and the exact semantics:
# ``portability.tolerance`` (QDQ graphs: 0.05 logits and every class the same; dynamic INT8: 0.5
# and 99%; the measurements behind both are in its comment). The controls must differ by more
# than SATURATED (measured >= 1.04).
SATURATED = 0.3


def _sample(task: str, data_dir) -> np.ndarray:
    from evaluator.datasets.store import as_model_input, load_hidden
    from evaluator.metrics import window_batches

    hidden = load_hidden(task, "all", data_dir)
    if task == "tinygpt":
        return np.ascontiguousarray(next(window_batches(hidden.segments, 64, SAMPLE[task]))[0])
    return as_model_input(task, hidden.inputs[:SAMPLE[task]])


def _controls(data_dir) -> dict[str, bytes]:
    """The mnist float baseline quantized the old way (full 8-bit weights), statically and
    dynamically."""
    from reference_models.compress.make_baselines import load_from_onnx
    from reference_models.compress.quantize import calibrate, export_quantized, prepare
    from reference_models.compress.weight_only import quantize_dynamic
    from reference_models.data import ToModelInput, load_task_data
    from reference_models.recipes import mnist_mlp

    float_path = BASELINES / "mnist_mlp.onnx"
    images, _ = load_task_data("mnist", "train", data_dir)
    qmodel = calibrate(prepare(load_from_onnx(mnist_mlp.build_model(), float_path),
                               scheme="u8s8"), [ToModelInput("mnist")(images[:500])])
    return {"control_static_u8s8": export_quantized(qmodel, None, task="mnist")
            .SerializeToString(),
            "control_dynamic_u8s8": quantize_dynamic(onnx.load(str(float_path)), "u8s8")
            .SerializeToString()}


@pytest.fixture(scope="module")
def emulated(prepared_data_dir):
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("qemu-x86_64 user mode runs this interpreter only on an x86-64 host")
    require(qemu_path() is not None, "qemu-x86_64 (qemu-user, for the emulated AVX2 CPU)")
    samples = {task: _sample(task, prepared_data_dir) for task in set(TASKS.values())}
    models: dict[str, bytes] = {name: (BASELINES / f"{name}.onnx").read_bytes()
                                for name in SHIPPED}
    inputs = {name: samples[TASKS[name]] for name in SHIPPED}
    for name, model in _controls(prepared_data_dir).items():
        models[name], inputs[name] = model, samples["mnist"]
    outputs = run_emulated(models, inputs, batch=BATCH)
    return models, inputs, outputs


def test_every_shipped_int8_baseline_is_checked():
    assert set(SHIPPED) == set(TASKS), "a new INT8 baseline needs its task and sample here"


@pytest.mark.parametrize("name", SHIPPED)
def test_int8_baseline_matches_its_semantics_on_emulated_avx2(name, emulated):
    models, inputs, outputs = emulated
    found = compare(outputs[name], reference_outputs(models[name], inputs[name], batch=BATCH))
    assert within_tolerance(found, models[name]), found


@pytest.mark.parametrize("name", ["control_static_u8s8", "control_dynamic_u8s8"])
def test_full_8_bit_weights_saturate_on_emulated_avx2_and_natively_only_without_vnni(
        name, emulated):
    models, inputs, outputs = emulated
    reference = reference_outputs(models[name], inputs[name], batch=BATCH)
    found = compare(outputs[name], reference)
    assert found["max_abs_diff"] > SATURATED, found  # the check above can fail
    native = compare(run_session(models[name], inputs[name], batch=BATCH), reference)
    if {"avx512_vnni", "avx_vnni"} & set(cpu_features()):
        assert within_tolerance(native, models[name]), native  # so the kernel did it
    else:  # this machine's own kernel is the AVX2 one
        assert native["max_abs_diff"] > SATURATED, native


@pytest.mark.parametrize("name", ["control_static_u8s8", "control_dynamic_u8s8"])
def test_the_evaluators_numerics_check_warns_on_the_saturating_cpu(name, emulated):
    # The scorecard's check (evaluator.numerics) on the emulated AVX2 CPU's real outputs: it
    # fails there and the student reads the INT8 remedy; the 7-bit baselines pass the same check.
    from evaluator import numerics

    models, inputs, outputs = emulated
    reference = reference_outputs(models[name], inputs[name], batch=BATCH)
    found = numerics.compare(outputs[name], reference)
    assert not found["ok"], found
    warning = numerics.warning_for(found, numerics.is_quantized(models[name]), "x86_64-avx2")
    assert "INT8 kernels saturate" in warning and "7 bits" in warning
    for shipped in SHIPPED:
        exact = reference_outputs(models[shipped], inputs[shipped], batch=BATCH)
        assert numerics.compare(outputs[shipped], exact)["ok"], shipped
