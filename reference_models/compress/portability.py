"""Does an INT8 model compute the same numbers on every CPU? Run it the way the scorer does on
an emulated x86 CPU without VNNI and compare with the exact semantics of its graph.

onnxruntime picks its integer kernels by the CPU's instruction set. With AVX-512 VNNI or AVX-VNNI
the uint8 x int8 dot products are summed exactly in int32; with AVX2 alone they are summed in
pairs in saturating int16 (``vpmaddubsw``), so a model with full-range int8 weights can lose up
to a logit or two there. ``qemu-x86_64 -cpu Haswell`` (qemu-user) runs a Python process on an
emulated AVX2 CPU without VNNI or AVX-512, and onnxruntime really takes its AVX2 kernels there:

    outputs = run_emulated({"m": "model_int8.onnx"}, {"m": inputs})["m"]
    compare(outputs, reference_outputs("model_int8.onnx", inputs))
    # {"max_abs_diff": ..., "class_agreement": ...}

The reference is the graph's exact semantics on any CPU: for a QDQ model, the same graph in
onnxruntime with graph optimizations off (DequantizeLinear, then float Conv/Gemm). A graph with
integer-arithmetic operators (a dynamic INT8 model's ``MatMulInteger``) would still run the CPU's
saturating integer kernel with optimizations off, so ``reference_outputs`` runs those in onnx's
reference evaluator (numpy, exact int32 sums) instead. Emulation is slow (float convolutions about 40x; the fused integer path is fine): give it a few
dozen inputs, and never time anything under it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# Haswell: AVX2 and FMA, no AVX-512, no VNNI. The removed features are ones qemu's TCG cannot
# emulate (it warns about each on every start); onnxruntime does not look at them.
HASWELL = "Haswell,-pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm"


def qemu_path() -> str | None:
    """Where ``qemu-x86_64`` (qemu-user) is, or None."""
    return shutil.which("qemu-x86_64")


def session(model: bytes | str | os.PathLike, optimized: bool = True):
    """A single-thread CPU session: the scorer's settings when ``optimized``, else the same with
    every graph optimization off (the graph's exact QDQ semantics)."""
    import onnxruntime as ort

    from evaluator.runtime import session_options

    options = session_options()
    if not optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def run_session(model: bytes | str | os.PathLike, inputs: np.ndarray, optimized: bool = True,
                batch: int = 50) -> np.ndarray:
    """The model's first output over ``inputs`` in batches of ``batch`` (keep the same batches
    when comparing: a dynamic INT8 model quantizes each batch with that batch's own range)."""
    runner = session(model, optimized)
    name = runner.get_inputs()[0].name
    return np.concatenate([runner.run(None, {name: inputs[i:i + batch]})[0]
                           for i in range(0, len(inputs), batch)])


# What a portable INT8 model's optimized session may differ from its exact semantics by, on any
# x86 CPU: (largest logit difference, lowest share of equal predicted classes). Measured with the
# 7-bit-weight baselines on an Intel Xeon with AVX-512 VNNI and under qemu Haswell:
# - QDQ (static) graphs: at most 0.0064 emulated (cifar10 and the pruned model, 100 images; mnist
#   1.4e-6, 200) and 0.018 natively over all 10,000 test images (requantization rounding ties),
#   every predicted class the same;
# - dynamic INT8 graphs: 0.24 natively (tinygpt, 64 windows of 64, 99.95% of the 4,096 predicted
#   characters the same) and 0.09 emulated (4 windows, 255 of 256): the activation ranges are
#   computed at run time by float ops whose last bit differs between onnxruntime and onnx's
#   numpy evaluator (and between CPUs), and one step of a quantized activation moves the logits.
# Full 8-bit weights saturate under qemu Haswell by 1.04 (mnist, static and dynamic), 1.43
# (tinygpt, 97.5% agreement), 1.55 (cifar10, 95%) and 1.95 (pruned, 81%).
TOLERANCE_QDQ = (0.05, 1.0)
TOLERANCE_DYNAMIC = (0.5, 0.99)


def tolerance(model: bytes | str | os.PathLike) -> tuple[float, float]:
    """``(max_abs_diff, min class_agreement)`` for ``model``'s kind: dynamic INT8 when the graph
    quantizes activations at run time, else QDQ."""
    import onnx

    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    dynamic = any(n.op_type == "DynamicQuantizeLinear" for n in onnx.load_from_string(data)
                  .graph.node)
    return TOLERANCE_DYNAMIC if dynamic else TOLERANCE_QDQ


def within_tolerance(found: dict, model: bytes | str | os.PathLike) -> bool:
    """Whether ``compare``'s ``found`` is what an exact kernel gives for ``model``."""
    largest, agreement = tolerance(model)
    return found["max_abs_diff"] <= largest and found["class_agreement"] >= agreement


# Operators whose onnxruntime kernel does integer arithmetic even with optimizations off.
INTEGER_ARITHMETIC = frozenset({"MatMulInteger", "ConvInteger", "QLinearConv", "QLinearMatMul",
                                "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QGemm"})


def reference_outputs(model: bytes | str | os.PathLike, inputs: np.ndarray, batch: int = 50
                      ) -> np.ndarray:
    """The exact semantics of ``model`` on ``inputs`` (same batches as ``run_session``): onnx's
    reference evaluator for graphs with integer-arithmetic operators, else onnxruntime with every
    optimization off (float arithmetic after DequantizeLinear, the same on every CPU)."""
    import onnx

    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    graph = onnx.load_from_string(data).graph
    if not any(node.op_type in INTEGER_ARITHMETIC for node in graph.node):
        return run_session(data, inputs, optimized=False, batch=batch)
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(onnx.load_from_string(data))
    name = evaluator.input_names[0]
    return np.concatenate([evaluator.run(None, {name: inputs[i:i + batch]})[0]
                           for i in range(0, len(inputs), batch)])


def compare(outputs: np.ndarray, reference: np.ndarray) -> dict:
    """Largest absolute logit difference and the share of inputs (or tokens) whose predicted
    class is the same."""
    return {"max_abs_diff": float(np.max(np.abs(outputs - reference))),
            "class_agreement": float(np.mean(outputs.argmax(-1) == reference.argmax(-1)))}


def run_emulated(models: dict[str, bytes | str | os.PathLike], inputs: dict[str, np.ndarray],
                 cpu: str = HASWELL, batch: int = 50, timeout: float = 600) -> dict[str, np.ndarray]:
    """Each ``models[key]`` run with the scorer's session settings on ``inputs[key]`` inside one
    ``qemu-x86_64 -cpu <cpu>`` process (one interpreter start for all of them)."""
    qemu = qemu_path()
    if qemu is None:
        raise RuntimeError("qemu-x86_64 (qemu-user) is not installed")
    with tempfile.TemporaryDirectory(prefix="int8-emulated-") as folder:
        root = Path(folder)
        for key, model in models.items():
            data = model if isinstance(model, bytes) else Path(model).read_bytes()
            (root / f"{key}.onnx").write_bytes(data)
            np.save(root / f"{key}.in.npy", inputs[key])
        (root / "job.json").write_text(json.dumps({"keys": list(models), "batch": batch}))
        # A standalone script in isolated mode: importing the framework package would cost the
        # emulated interpreter several seconds for nothing.
        child = Path(__file__).with_name("_emulated_child.py")
        done = subprocess.run([qemu, "-cpu", cpu, sys.executable, "-I", str(child), str(root)],
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"the emulated run failed ({done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}")
        return {key: np.load(root / f"{key}.out.npy") for key in models}


__all__ = ["HASWELL", "INTEGER_ARITHMETIC", "TOLERANCE_DYNAMIC", "TOLERANCE_QDQ", "compare",
           "qemu_path", "reference_outputs", "run_emulated", "run_session", "session", "tolerance",
           "within_tolerance"]
