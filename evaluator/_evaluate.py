"""Scoring inside the child process: accuracy, memory, throughput and latency of one model.

Runs only in ``evaluator._child`` after the sandbox limits are applied. Every call into onnxruntime
goes through ``_call`` so a model failure is told apart from a bug of ours.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime

from evaluator import numerics
from evaluator.datasets import DatasetNotPrepared, as_model_input, load_hidden, load_train_sample
from evaluator.latency import LatencyProtocol, measure_latency, measure_throughput
from evaluator.metrics import (
    Tally,
    next_char_tally,
    window_batches,
    window_count,
)
from evaluator.reference import INPUT_NAME, reference_basket, reference_input
from evaluator.runtime import make_session
from evaluator.tasks import Task, get_task
from evaluator.train_gap import loss_tally

SPLITS = ("public", "private")


class ModelFault(Exception):
    """The model misbehaved: ``kind`` is a scorecard ``failure_kind``, the message is for students."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class RuntimeFailure(Exception):
    """onnxruntime raised while loading or running the model (``doing`` says which)."""

    def __init__(self, error: BaseException, doing: str):
        super().__init__(str(error))
        self.error = error
        self.doing = doing


def load_splits(job: dict) -> dict:
    """Both halves of the hidden set (the task's standard set, or the job's ``hidden_set``), and
    under ``train`` the fixed sample of the public training data when it is prepared; read from
    the prepared data directory (none to calibrate)."""
    if job.get("calibrate"):
        return {}
    data_dir, task = job.get("data_dir"), job["task"]
    hidden = {split: load_hidden(task, split, data_dir, job.get("hidden_set")) for split in SPLITS}
    try:
        hidden["train"] = load_train_sample(task, data_dir)
    except DatasetNotPrepared:  # the train gap is then not measured; the score still counts
        pass
    return hidden


def prepare(job: dict) -> None:
    """Everything that needs file access, done before privileges are dropped: build the reference
    basket and load every module the scoring path imports lazily."""
    import numpy.lib  # noqa: F401
    numerics.warm_up_reference_evaluator()  # for the numerics check of integer-kernel graphs
    reference_basket(job["task"])
    np.percentile(np.arange(3.0), 90)


def _call(doing: str, function: Callable, *args):
    try:
        return function(*args)
    except (ModelFault, KeyboardInterrupt):
        raise
    except Exception as error:
        raise RuntimeFailure(error, doing) from error


class ModelRunner:
    """Runs the model on one input array and checks its first output against the task."""

    def __init__(self, session: onnxruntime.InferenceSession, task: Task):
        self.session = session
        self.task = task
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name

    def raw(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: x})[0]

    def checked(self, x: np.ndarray, doing: str) -> np.ndarray:
        out = _call(doing, self.raw, x)
        expected = (x.shape[0], self.task.num_classes)
        if self.task.is_language_model:
            expected = (x.shape[0], x.shape[1], self.task.num_classes)
        if not isinstance(out, np.ndarray) or out.dtype != np.float32:
            kind = getattr(out, "dtype", type(out).__name__)
            raise ModelFault("bad_output", f"The model returned {kind} values; the task needs float32.")
        if tuple(out.shape) != expected:
            raise ModelFault(
                "bad_output",
                f"The model returned an output of shape {tuple(out.shape)} for an input of shape "
                f"{tuple(x.shape)}; the task needs {expected}.",
            )
        if not np.all(np.isfinite(out)):
            raise ModelFault(
                "bad_output",
                f"The model's output contains NaN or infinite values (while {doing}).",
            )
        return out


def _image_batches(task: Task, hidden, batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(hidden.labels), batch):
        stop = start + batch
        yield as_model_input(task.name, hidden.inputs[start:stop]), hidden.labels[start:stop]


def _split_tally(runner: ModelRunner, hidden, context: int, protocol: LatencyProtocol) -> Tally:
    tally = Tally()
    doing = (f"scoring the {hidden.split} half of the hidden set" if hidden.split != "train"
             else "scoring the training-data sample")
    if runner.task.is_language_model:
        per_batch = max(1, protocol.accuracy_tokens // context)
        for inputs, targets in window_batches(hidden.segments, context, per_batch):
            tally.add(next_char_tally(runner.checked(inputs, doing), targets))
    else:
        for inputs, labels in _image_batches(runner.task, hidden, protocol.accuracy_batch):
            tally.add(loss_tally(runner.checked(inputs, doing), labels))
    return tally


def _accuracy_samples(task: Task, hidden, context: int) -> int:
    """How many inputs (images, or windows of a language model) the accuracy pass runs."""
    if task.is_language_model:
        return sum(window_count(len(segment), context) for segment in hidden.segments)
    return len(hidden.labels)


def _sample_inputs(task: Task, hidden, context: int, count: int) -> np.ndarray:
    """The first ``count`` inputs of a split (repeated if the split is smaller)."""
    if task.is_language_model:
        batch = next(window_batches(hidden.segments, context, count), None)
        if batch is None:
            raise ValueError(f"no segment of the hidden text holds a full window of {context} ids")
        inputs = batch[0]
    else:
        inputs = as_model_input(task.name, hidden.inputs[:count])
    if len(inputs) < count:
        inputs = np.concatenate([inputs] * (count // len(inputs) + 1))[:count]
    return np.ascontiguousarray(inputs)


def check_numerics(runner: ModelRunner, model_bytes: bytes, task: Task, hidden, context: int) -> dict:
    """The scoring session against the same graph with optimizations off, on a fixed sample: the
    first ``SAMPLE_IMAGES`` images (``SAMPLE_WINDOWS`` windows for a language model) of the public
    half, one batch each way."""
    count = numerics.SAMPLE_WINDOWS if task.is_language_model else numerics.SAMPLE_IMAGES
    sample = _sample_inputs(task, hidden, context, count)
    scored = runner.checked(sample, "checking numerics")
    run, name = _call("checking numerics", numerics.reference_runner, model_bytes)
    if name == numerics.EVALUATOR_NAME:  # numpy's reference kernels are slow: a smaller sample
        limit = numerics.EVALUATOR_WINDOWS if task.is_language_model else numerics.EVALUATOR_IMAGES
        sample, scored = sample[:limit], scored[:limit]
    exact, name = _call("checking numerics (reference execution)", run, sample)
    exact = np.asarray(exact, np.float32)
    if exact.shape != scored.shape or not np.all(np.isfinite(exact)):
        raise ModelFault("bad_output", "The model's reference execution gave an output of shape "
                         f"{exact.shape} or non-finite values where the scoring session gave "
                         f"{scored.shape}.")
    result = numerics.compare(scored, exact, name)
    result["quantized"] = numerics.is_quantized(model_bytes)
    return result


def _status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak_memory() -> float:
    """Resident memory now (MB), after resetting the kernel's peak-RSS mark where Linux allows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    current = _status_mb("VmRSS")
    return current if current is not None else _maxrss_mb()


def _maxrss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def peak_memory_mb() -> float:
    peak = _status_mb("VmHWM")
    return peak if peak is not None else _maxrss_mb()


class StageClock:
    """Reports each stage to the parent and records the seconds spent in it."""

    def __init__(self, report: Callable[[str], None]):
        self.report = report
        self.seconds: dict[str, float] = {}
        self._current: str | None = None
        self._started = time.perf_counter()

    def __call__(self, name: str | None, **info) -> None:
        now = time.perf_counter()
        if self._current is not None:
            self.seconds[self._current] = now - self._started
        self._current, self._started = name, now
        if name is not None:
            self.report(name, **info)


# Extra sessions of the model for the latency stage only while their memory stays this small
# (a model near the sandbox's memory limit is timed on its one session).
COPIES_MEMORY_BUDGET_MB = 512.0


def _basket_runs(task_name: str, copies: int) -> list[list[Callable[[], object]]]:
    """``copies`` sessions of each member of the task's reference basket, as runs."""
    feed = {INPUT_NAME: reference_input(task_name)}
    sessions = [[make_session(member) for _ in range(copies)]
                for member in reference_basket(task_name)]
    return [[lambda session=session: session.run(None, feed) for session in member]
            for member in sessions]


def _model_runs(runner: ModelRunner, model_bytes: bytes, x: np.ndarray, copies: int,
                memory_mb: float) -> list[Callable[[], object]]:
    """The scoring session and up to ``copies - 1`` more sessions of the same bytes, as runs."""
    if memory_mb * copies > COPIES_MEMORY_BUDGET_MB:
        copies = 1
    runners = [runner] + [
        ModelRunner(_call("loading the model", make_session, model_bytes), runner.task)
        for _ in range(copies - 1)]
    return [lambda each=each: each.raw(x) for each in runners]


def calibrate_in_process(job: dict, report: Callable) -> dict:
    """The task's reference basket timed by the scoring protocol, against a second session of its
    first member as the model (so the loop, the interleaving and the machine state are those of a
    scoring run); the basket's latency is the geometric mean of its members' medians."""
    stage = StageClock(report)
    task = get_task(job["task"])
    protocol = LatencyProtocol.from_dict(job["protocol"])
    stage("calibrating")
    model = make_session(reference_basket(task.name)[0])
    feed = {INPUT_NAME: reference_input(task.name)}
    latency = measure_latency(lambda: model.run(None, feed),
                              _basket_runs(task.name, protocol.copies), protocol)
    stage(None)
    return {"stage_seconds": stage.seconds, "latency": latency,
            "versions": {"onnxruntime": onnxruntime.__version__}}


def score_in_process(model_bytes: bytes, job: dict, hidden: dict, report: Callable) -> dict:
    """All in-child measurements of one model; tallies are per half so the parent can pool them."""
    stage = StageClock(report)
    task = get_task(job["task"])
    protocol = LatencyProtocol.from_dict(job["protocol"])
    context = int(job.get("context_length") or task.max_context or 0)
    stage("loading")
    baseline = reset_peak_memory()
    runner = ModelRunner(_call("loading the model", make_session, model_bytes), task)
    # The probe: one batch-1 inference, under the parent's probe deadline (a hung one never comes
    # back, so only the parent can end it); its time sets the parent's budget for the rest.
    stage("probe")
    single = _sample_inputs(task, hidden["public"], context, 1)
    started = time.perf_counter()
    runner.checked(single, "running the first inference")
    probe_seconds = time.perf_counter() - started
    scored = [name for name in (*SPLITS, "train") if name in hidden]
    samples = sum(_accuracy_samples(task, hidden[name], context) for name in scored)
    stage("accuracy", probe_seconds=probe_seconds, samples=samples)
    tallies = {name: _split_tally(runner, hidden[name], context, protocol) for name in SPLITS}
    memory = peak_memory_mb() - baseline
    # The train gap (evaluator.train_gap): the same model on the fixed training-data sample.
    train = _split_tally(runner, hidden["train"], context, protocol) if "train" in hidden else None

    stage("numerics")
    numerics_check = check_numerics(runner, model_bytes, task, hidden["public"], context)

    stage("throughput")
    batch = _sample_inputs(task, hidden["public"], context, protocol.throughput_batch)
    runner.checked(batch, "measuring throughput")
    throughput = _call("measuring throughput", measure_throughput,
                       lambda: runner.raw(batch), len(batch), protocol)

    stage("latency")
    runner.checked(single, "measuring latency")
    model_runs = _model_runs(runner, model_bytes, single, protocol.copies, max(0.0, memory))
    latency = _call("measuring latency", measure_latency,
                    model_runs, _basket_runs(task.name, protocol.copies), protocol)
    latency["copies"] = len(model_runs)
    stage(None)
    return {
        "stage_seconds": stage.seconds,
        "splits": {name: vars(tally) for name, tally in tallies.items()},
        "train_sample": vars(train) if train is not None else None,
        "peak_memory_mb": max(0.0, memory),
        "peak_address_space_mb": _status_mb("VmPeak"),
        "throughput": throughput,
        "latency": latency,
        "probe_seconds": probe_seconds,
        "numerics": numerics_check,
        "context_length": context if task.is_language_model else None,
        "versions": {
            "onnxruntime": onnxruntime.__version__,
            "onnx": onnx.__version__,
            "numpy": np.__version__,
        },
    }
