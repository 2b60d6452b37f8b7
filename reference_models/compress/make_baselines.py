"""Build the compressed baselines from the float baselines, score them, and write their records.

    python -m reference_models.compress.make_baselines --data-dir /tmp/arena-data \\
        --out reference_models/baselines cifar10-int8 cifar10-pruned-int8 mnist-int8

Every model is scored by the evaluator on the hidden test set with the standard protocol, and its
float source is scored again in the same run, so the ratios compare numbers taken under the same
machine load. Calibration and fine-tuning only ever read the public training data.

``--scheme`` picks the INT8 integer types (``fake_quant.INT8_SCHEMES``); the default ``u8s7``
(7-bit weights) is the one whose onnxruntime outputs are the same on x86 with and without VNNI.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from reference_models.compress.fake_quant import DEFAULT_SCHEME, INT8_SCHEMES, int8_scheme
from reference_models.data import DataLoader, TensorDataset, ToModelInput, load_task_data
from reference_models.nn.module import Module

SCORE_KEYS = ("accuracy", "bits_per_char", "latency_ms", "latency_p90_ms", "speed_index",
              "size_bytes", "raw_bytes", "params", "nonzero_params", "latency_noisy")


def load_from_onnx(model: Module, path: str | os.PathLike) -> Module:
    """Copy an exported model's initializers back into ``model`` (export names them by
    ``state_dict`` keys), so a committed ``.onnx`` baseline can be compressed further."""
    arrays = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    state = model.state_dict()
    missing = [name for name, value in state.items() if name not in arrays and value.ndim > 0]
    if missing:
        raise ValueError(f"{path} does not hold {missing[:5]}: not exported from this recipe")
    model.load_state_dict({name: arrays[name] for name in state if name in arrays}, strict=False)
    return model.eval()


def calibration_batches(task: str, data_dir, count: int = 2000, batch: int = 250,
                        seed: int = 0) -> list[np.ndarray]:
    """``count`` random images of the public training data, as model input."""
    images, _ = load_task_data(task, "train", data_dir, validation_size=0)
    chosen = np.random.default_rng(seed).choice(len(images), count, replace=False)
    inputs = ToModelInput(task)(images[np.sort(chosen)])
    return [inputs[i:i + batch] for i in range(0, count, batch)]


def validation_accuracy(model: Module, task: str, data_dir) -> float:
    """The framework's accuracy on the task's validation hold-out (public training data)."""
    from reference_models.train import evaluate

    images, labels = load_task_data(task, "validation", data_dir)
    loader = DataLoader(TensorDataset(images, labels), batch_size=500,
                        transform=ToModelInput(task))
    return evaluate(model, loader)["accuracy"]


def score_file(path: Path, task: str, data_dir) -> dict:
    from evaluator.scoring import score

    card = score(path, task, data_dir=data_dir)
    if not card["valid"]:
        raise RuntimeError(f"{path} was refused: {card['error']}")
    return {key: card[key] for key in SCORE_KEYS}


def ptq_int8(float_model: Module, task: str, data_dir, observers=("minmax", "percentile"),
             scheme: str = DEFAULT_SCHEME):
    """Post-training static INT8 with the observer that keeps the best validation accuracy."""
    from reference_models.compress.quantize import calibrate, prepare

    batches = calibration_batches(task, data_dir)
    best = None
    for observer in observers:
        qmodel = calibrate(prepare(float_model, observer=observer, scheme=scheme), batches)
        accuracy = validation_accuracy(qmodel, task, data_dir)
        print(f"  PTQ with {observer} ranges: validation accuracy {accuracy:.2%}", flush=True)
        if best is None or accuracy > best[2]:
            best = (observer, qmodel, accuracy)
    return best


def fine_tune(model: Module, task: str, data_dir, *, images: int, lr: float,
              batch_size: int = 128, seed: int = 0) -> None:
    """A short SGD fine-tune on ``images`` random training images (recipes' augmentation)."""
    from functools import partial

    from reference_models import optim
    from reference_models.data import Compose, RandomCrop, RandomHorizontalFlip
    from reference_models.nn import functional as F
    from reference_models.train import fit

    inputs, labels = load_task_data(task, "train", data_dir, validation_size=0)
    chosen = np.random.default_rng(seed + 1).choice(len(inputs), images, replace=False)
    steps = [RandomCrop(32, padding=4), RandomHorizontalFlip()] if task == "cifar10" else [
        RandomCrop(28, padding=2)]
    loader = DataLoader(TensorDataset(inputs[chosen], labels[chosen]), batch_size=batch_size,
                        shuffle=True, drop_last=True, seed=seed,
                        transform=Compose([*steps, ToModelInput(task)]))
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=len(loader))
    fit(model, loader, optimizer, partial(F.cross_entropy, label_smoothing=0.1), 1,
        scheduler=scheduler, seed=seed, progress=False)
    model.eval()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _weights_text(scheme: str, per: str) -> str:
    chosen = int8_scheme(scheme)
    bits = "7-bit (-63..63)" if chosen.reduce_range else "8-bit"
    zero = ", zero point 128" if chosen.weights == "uint8" else ""
    return f"{chosen.weights} {bits} symmetric per {per}{zero}"


def _machine() -> dict:
    """The builder's machine: the CPU features that decide onnxruntime's INT8 kernels, and load."""
    from evaluator.hardware import cpu_features, cpu_model

    return {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "cpu_features": cpu_features(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def _write(out: Path, name: str, qmodel: Module, task: str, data_dir, float_path: Path,
           method: dict, started: float, extra: dict | None = None) -> dict:
    from reference_models.compress.quantize import export_quantized

    path = out / f"{name}.onnx"
    export_quantized(qmodel, path, task=task)
    return _record(out, name, path, task, data_dir, float_path, method, started, extra)


def _record(out: Path, name: str, path: Path, task: str, data_dir, float_path: Path,
            method: dict, started: float, extra: dict | None = None) -> dict:
    """Score ``path`` and its float source back to back; write ``<name>.json``. ``extra``:
    more keys for the record (the pruned model's own float scorecard)."""
    from reference_models.compress.quantize import integer_kernel_count

    print(f"  scoring {path.name} and its float source on the hidden set...", flush=True)
    scores = score_file(path, task, data_dir)
    float_scores = score_file(float_path, task, data_dir)
    record = {
        "name": name,
        "task": task,
        "command": "python -m reference_models.compress.make_baselines " + shlex.join(
            sys.argv[1:]),
        "source": {"file": float_path.name, "sha256": _sha256(float_path)},
        "method": method,
        "integer_kernels": integer_kernel_count(path),
        "scorecard": scores,
        "float_scorecard": float_scores,
        "compared_with_float": {
            "accuracy_delta_points": round((scores["accuracy"] - float_scores["accuracy"]) * 100,
                                           3),
            "size_ratio": round(float_scores["size_bytes"] / scores["size_bytes"], 3),
            "latency_ratio": round(float_scores["latency_ms"] / scores["latency_ms"], 3),
        },
        **(extra or {}),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "machine": _machine(),
        "note": "scored on a shared 2-core machine; latency is the evaluator's single-thread "
                "median, ratios are of runs taken back to back",
    }
    (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["compared_with_float"]), flush=True)
    return record


def make_int8(recipe, out: Path, data_dir, name: str, max_drop: float = 0.005,
              qat_images: int = 10_000, scheme: str = DEFAULT_SCHEME) -> dict:
    """PTQ; if it loses more than ``max_drop`` on the validation slice, a short QAT pass."""
    started = time.perf_counter()
    float_path = out / f"{recipe.NAME.replace('-', '_')}.onnx"
    float_model = load_from_onnx(recipe.build_model(), float_path)
    float_accuracy = validation_accuracy(float_model, recipe.TASK, data_dir)
    print(f"  float: validation accuracy {float_accuracy:.2%}", flush=True)
    observer, qmodel, accuracy = ptq_int8(float_model, recipe.TASK, data_dir, scheme=scheme)
    method = {"kind": "post-training static INT8, QDQ", "scheme": scheme,
              "weights": _weights_text(scheme, "channel"),
              "activations": f"{int8_scheme(scheme).activations} asymmetric, {observer} ranges",
              "bias": "int32",
              "calibration": "2,000 random public training images",
              "float_validation_accuracy": float_accuracy, "validation_accuracy": accuracy}
    if float_accuracy - accuracy > max_drop:
        fine_tune(qmodel, recipe.TASK, data_dir, images=qat_images, lr=0.002)
        tuned = validation_accuracy(qmodel, recipe.TASK, data_dir)
        print(f"  after QAT on {qat_images} images: {tuned:.2%}", flush=True)
        method.update(kind="static INT8, QDQ, with quantization-aware training",
                      qat=f"1 pass over {qat_images} random training images, SGD lr 0.002 "
                          "cosine, straight-through estimator", validation_accuracy=tuned)
    return _write(out, name, qmodel, recipe.TASK, data_dir, float_path, method, started)


def make_pruned_int8(recipe, out: Path, data_dir, name: str, sparsity=(0.5, 0.7),
                     channels: float = 0.25, tune_images: int = 10_000,
                     tune_lr: float = 0.01, scheme: str = DEFAULT_SCHEME) -> dict:
    """Structured channel pruning, then global magnitude pruning in steps with a short fine-tune
    after each, then PTQ INT8."""
    from reference_models.compress.prune import iterative_prune, prune_channels

    started = time.perf_counter()
    float_path = out / f"{recipe.NAME.replace('-', '_')}.onnx"
    model = prune_channels(load_from_onnx(recipe.build_model(), float_path), channels)
    print(f"  {channels:.1%} of channels removed: validation accuracy "
          f"{validation_accuracy(model, recipe.TASK, data_dir):.2%}", flush=True)

    def tune(model: Module) -> None:
        fine_tune(model, recipe.TASK, data_dir, images=tune_images, lr=tune_lr)
        print(f"  fine-tuned: {validation_accuracy(model, recipe.TASK, data_dir):.2%}",
              flush=True)

    model = iterative_prune(model, list(sparsity), tune, scope="global")
    tuned = validation_accuracy(model, recipe.TASK, data_dir)
    observer, qmodel, accuracy = ptq_int8(model, recipe.TASK, data_dir, scheme=scheme)
    method = {"kind": "structured + unstructured pruning, fine-tune, post-training static INT8",
              "structured": f"{channels:.1%} of each hidden layer's channels (L1 x |BN gamma|)",
              "unstructured": f"global magnitude pruning to {list(sparsity)} of the weights, "
                              "in steps",
              "fine_tune": f"after each step 1 pass over {tune_images} random training images, "
                           f"SGD lr {tune_lr} cosine, masks kept",
              "quantization": f"{_weights_text(scheme, 'channel')} weights, "
                              f"{int8_scheme(scheme).activations} {observer} activations",
              "scheme": scheme,
              "validation_accuracy_after_fine_tune": tuned,
              "validation_accuracy": accuracy}
    extra = {"pruned_float_scorecard": _score_pruned_float(model, recipe.TASK, data_dir)}
    record = _write(out, name, qmodel, recipe.TASK, data_dir, float_path, method, started, extra)
    delta = round((record["scorecard"]["accuracy"] - extra["pruned_float_scorecard"]["accuracy"])
                  * 100, 3)
    record["compared_with_pruned_float"] = {"accuracy_delta_points": delta}
    (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["compared_with_pruned_float"]), flush=True)
    return record


def _score_pruned_float(model: Module, task: str, data_dir) -> dict:
    """The evaluator's scorecard of the pruned, fine-tuned float model the INT8 file is quantized
    from (exported to a temporary file: only its record is kept)."""
    import tempfile

    from reference_models.export import export_onnx
    from reference_models.recipes.common import example_input

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pruned_float.onnx"
        export_onnx(model, example_input(task), path, task=task)
        print("  scoring the pruned float model on the hidden set...", flush=True)
        return score_file(path, task, data_dir)


def make_dynamic_int8(float_name: str, task: str, out: Path, data_dir, name: str,
                      scheme: str = DEFAULT_SCHEME) -> dict:
    """Dynamic INT8 (weights int8 per column, activations quantized at run time) of an exported
    float graph: the form for linear-heavy models such as the GPT."""
    from reference_models.compress.weight_only import quantize_dynamic

    started = time.perf_counter()
    float_path = out / f"{float_name}.onnx"
    path = out / f"{name}.onnx"
    path.write_bytes(quantize_dynamic(onnx.load(str(float_path)), scheme).SerializeToString())
    method = {"kind": "dynamic INT8 graph rewrite (reference_models.compress.weight_only)",
              "scheme": scheme, "weights": _weights_text(scheme, "output column"),
              "activations": "uint8, range of each input computed at run time"}
    return _record(out, name, path, task, data_dir, float_path, method, started)


def main(argv: list[str] | None = None) -> int:
    from reference_models.recipes import cifar10_cnn, mnist_mlp

    jobs = {
        "cifar10-int8": lambda out, d: make_int8(cifar10_cnn, out, d, "cifar10_cnn_int8",
                                                 scheme=args.scheme),
        "cifar10-pruned-int8": lambda out, d: make_pruned_int8(
            cifar10_cnn, out, d, "cifar10_cnn_pruned_int8", tuple(args.sparsity),
            args.channels, args.tune_images, args.tune_lr, scheme=args.scheme),
        "mnist-int8": lambda out, d: make_int8(mnist_mlp, out, d, "mnist_mlp_int8",
                                               scheme=args.scheme),
        "tinygpt-int8": lambda out, d: make_dynamic_int8("tinygpt", "tinygpt", out, d,
                                                         "tinygpt_int8", scheme=args.scheme),
    }
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jobs", nargs="+", choices=sorted(jobs))
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "baselines")
    parser.add_argument("--scheme", choices=sorted(INT8_SCHEMES), default=DEFAULT_SCHEME,
                        help="INT8 integer types (default %(default)s: 7-bit weights, the same "
                             "outputs on x86 with and without VNNI; see docs/compression.md)")
    pruning = parser.add_argument_group("cifar10-pruned-int8")
    pruning.add_argument("--channels", type=float, default=0.25,
                         help="fraction of each hidden layer's channels removed")
    pruning.add_argument("--sparsity", type=float, nargs="+", default=[0.5, 0.7],
                         help="global magnitude pruning steps (fractions of all weights)")
    pruning.add_argument("--tune-images", type=int, default=10_000)
    pruning.add_argument("--tune-lr", type=float, default=0.01)
    args = parser.parse_args(argv)
    for job in args.jobs:
        print(f"{job}:", flush=True)
        jobs[job](args.out, args.data_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
