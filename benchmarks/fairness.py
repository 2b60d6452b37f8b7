"""Fairness benchmark: is the speed figure steady, true to bare onnxruntime, and core-independent?

    .venv/bin/python benchmarks/fairness.py [--quick] [--repeats 10] [--load 2] [--data-dir DIR]

Prints, measured side by side in one run under a stated load (``--load N`` starts N busy
``python -c "while 1: pass"`` processes, unpinned, for the whole run; the load averages are printed):

1. Steadiness: the coefficient of variation of ``speed_index`` (and of the raw ``latency_ms``) over
   ``--repeats`` fresh ``score()`` runs of one model (goal: speed index CV <= 1%), and how often the
   scorecard's 95% interval held the median of all runs.
2. Truth: the ratio of two models' speed indexes (CIFAR-10 float CNN vs its INT8 twin) against the
   same latency ratio timed bare in onnxruntime in a fresh process on the same core, each model in
   ~20 ms turns of consecutive runs (goal: within 3%).
3. Core independence: two worker processes scoring the same model at the same time, one pinned to
   each core (goal: speed indexes within 2%).

Then it runs ``benchmarks/fairness_int8.py`` (INT8 accuracy, optimized vs reference execution, of
every shipped INT8 baseline) if that file is present. Models: the shipped CIFAR-10 baselines.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluator.hardware import cpu_features, cpu_model, hardware_class  # noqa: E402
from evaluator.latency import LatencyProtocol  # noqa: E402
from evaluator.sandbox import default_cpu  # noqa: E402
from evaluator.scoring import score  # noqa: E402

BASELINES = ROOT / "reference_models" / "baselines"
MODEL_A = BASELINES / "cifar10_cnn.onnx"
MODEL_B = BASELINES / "cifar10_cnn_int8.onnx"
TASK = "cifar10"

_BARE = r"""
import json, os, sys, time
import numpy as np
from evaluator.runtime import make_session
from evaluator.reference import reference_input
os.sched_setaffinity(0, {int(sys.argv[1])})
seconds = float(sys.argv[2])
sessions = [make_session(open(path, "rb").read()) for path in sys.argv[3:]]
x = reference_input("cifar10")
feeds = [{s.get_inputs()[0].name: x} for s in sessions]
for _ in range(50):
    for s, f in zip(sessions, feeds):
        s.run(None, f)
times = [[] for _ in sessions]
started = time.perf_counter()
while time.perf_counter() - started < seconds:
    # Each model alone for ~20 ms (consecutive runs on its own warm caches), the models taking
    # turns so both see the same machine state.
    for i, (s, f) in enumerate(zip(sessions, feeds)):
        round_started = time.perf_counter()
        while time.perf_counter() - round_started < 0.02:
            t = time.perf_counter_ns(); s.run(None, f); times[i].append(time.perf_counter_ns() - t)
print(json.dumps([float(np.median(t)) / 1e6 for t in times]))
"""

_WORKER = r"""
import json, sys
from evaluator.scoring import score
from evaluator.latency import LatencyProtocol
card = score(sys.argv[1], sys.argv[2], data_dir=sys.argv[3] if sys.argv[3] != "-" else None,
             protocol=LatencyProtocol.standard())
print(json.dumps({k: card[k] for k in ("speed_index", "speed_index_ci", "latency_ms",
                                       "reference_latency_ms", "valid", "error")}
                 | {"cpu": card["sandbox"].get("pinned_cpu")}))
"""


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else 0.0


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def bare_latencies(models: list[Path], cpu: int, seconds: float) -> list[float]:
    """Median batch-1 latency (ms) of each model, interleaved, in a fresh pinned process."""
    done = subprocess.run([sys.executable, "-c", _BARE, str(cpu), str(seconds), *map(str, models)],
                          capture_output=True, text=True, env=_env(), check=True, timeout=600)
    return json.loads(done.stdout)


def _score(model: Path, data_dir: str | None) -> dict:
    card = score(model, TASK, data_dir=data_dir, protocol=LatencyProtocol.standard())
    if not card["valid"]:
        raise SystemExit(f"{model.name} failed to score: {card['error']}")
    return card


def steadiness(repeats: int, data_dir: str | None) -> dict:
    cards_a, cards_b = [], []
    for index in range(repeats):
        cards_a.append(_score(MODEL_A, data_dir))
        if index < max(3, repeats // 2):  # B interleaved with A, for the ratio
            cards_b.append(_score(MODEL_B, data_dir))
        print(f"  scoring {index + 1}/{repeats}: speed index {cards_a[-1]['speed_index']:.4f} "
              f"[{cards_a[-1]['speed_index_ci'][0]:.4f}, {cards_a[-1]['speed_index_ci'][1]:.4f}], "
              f"latency {cards_a[-1]['latency_ms']:.4f} ms, reference basket "
              f"{cards_a[-1]['reference_latency_ms']:.4f} ms (load {_load()})", flush=True)
    speed = [c["speed_index"] for c in cards_a]
    middle = statistics.median(speed)
    covered = sum(c["speed_index_ci"][0] <= middle <= c["speed_index_ci"][1] for c in cards_a)
    return {
        "speed_index_cv": _cv(speed),
        "latency_cv": _cv([c["latency_ms"] for c in cards_a]),
        "reference_latency_cv": _cv([c["reference_latency_ms"] for c in cards_a]),
        "ci_covers_median": f"{covered}/{len(cards_a)}",
        "ci_width_mean": statistics.mean(
            (c["speed_index_ci"][1] - c["speed_index_ci"][0]) / c["speed_index"] for c in cards_a),
        "speed_a": statistics.median(speed),
        "speed_b": statistics.median(c["speed_index"] for c in cards_b),
        "latency_a": statistics.median(c["latency_ms"] for c in cards_a),
        "latency_b": statistics.median(c["latency_ms"] for c in cards_b),
    }


def two_workers(data_dir: str | None) -> list[dict]:
    """The same model scored at the same time by two worker processes, one on each core."""
    processes = []
    for cpu in sorted(os.sched_getaffinity(0))[:2]:
        env = {**_env(), "ARENA_SCORING_CPU": str(cpu)}
        processes.append(subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(MODEL_A), TASK, data_dir or "-"],
            stdout=subprocess.PIPE, text=True, env=env))
    return [json.loads(p.communicate(timeout=900)[0]) for p in processes]


def _busy(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 scorings instead of 10")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--load", type=int, default=2,
                        help="busy processes to run meanwhile (default 2: load >= 2 on 2 cores)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--skip-int8", action="store_true", help="do not run fairness_int8.py")
    args = parser.parse_args(argv)
    repeats = args.repeats or (4 if args.quick else 10)
    print(f"CPU: {cpu_model()}; features {', '.join(cpu_features())}; class {hardware_class()}; "
          f"{os.cpu_count()} cores; scoring core {default_cpu()}")
    print(f"models: {MODEL_A.name} (A) and {MODEL_B.name} (B), task {TASK}; {repeats} scorings; "
          f"{args.load} busy processes; load average before: {_load()}")
    busy = _busy(args.load)
    started = time.monotonic()
    try:
        time.sleep(2 if args.load else 0)
        steady = steadiness(repeats, args.data_dir)
        bare = bare_latencies([MODEL_A, MODEL_B], default_cpu(), 3.0 if args.quick else 10.0)
        workers = two_workers(args.data_dir)
        load_during = _load()
    finally:
        for process in busy:
            process.kill()
            process.wait()
    scored_ratio = steady["speed_b"] / steady["speed_a"]
    bare_ratio = bare[0] / bare[1]
    worker_gap = workers[1]["speed_index"] / workers[0]["speed_index"] - 1
    print(f"\nload average during (1/5/15 min): {load_during}; {time.monotonic() - started:.0f} s")
    print(f"1. speed index CV over {repeats} fresh scorings of A: {steady['speed_index_cv']:.2%} "
          f"(goal <= 1%); raw latency CV {steady['latency_cv']:.2%}; reference latency CV "
          f"{steady['reference_latency_cv']:.2%}; 95% CI covers the median in "
          f"{steady['ci_covers_median']} (mean width {steady['ci_width_mean']:.2%})")
    print(f"2. speed index ratio B/A {scored_ratio:.4f} (A {steady['speed_a']:.4f}, B "
          f"{steady['speed_b']:.4f}) vs bare onnxruntime latency ratio A/B {bare_ratio:.4f} "
          f"(A {bare[0]:.4f} ms, B {bare[1]:.4f} ms): off by {scored_ratio / bare_ratio - 1:+.2%} "
          f"(goal within 3%); scored latency ratio {steady['latency_a'] / steady['latency_b']:.4f}")
    print(f"3. two workers at once: core {workers[0]['cpu']} speed index "
          f"{workers[0]['speed_index']:.4f}, core {workers[1]['cpu']} "
          f"{workers[1]['speed_index']:.4f}: {worker_gap:+.2%} (goal within 2%)")
    int8 = ROOT / "benchmarks" / "fairness_int8.py"
    if int8.exists() and not args.skip_int8:
        print("\nINT8 accuracy, optimized vs reference execution (benchmarks/fairness_int8.py):",
              flush=True)
        spec = importlib.util.spec_from_file_location("fairness_int8", int8)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        int8_args = (["--quick"] if args.quick else []) + (
            ["--data-dir", args.data_dir] if args.data_dir else [])
        try:
            return module.main(int8_args) or 0
        except TypeError:  # a main() that takes no arguments
            return module.main() or 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
