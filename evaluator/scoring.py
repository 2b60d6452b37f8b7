"""``score``: validate a model, run it in the locked-down child, and return its scorecard.

The scorecard is a JSON-able dict with a fixed set of keys (``SCORECARD_KEYS``); metrics are
``None`` when they could not be measured. A fault of the model (rejected by validation, crash,
hang, memory blow-up, NaN or wrongly shaped output) gives ``valid=False`` with ``failure_kind`` and
an ``error`` a student can act on, and never raises. ``ScoringError`` is raised only when the
platform itself failed (datasets not prepared, the child could not start, a bug of ours), so the
caller may retry without blaming the student.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
from pathlib import Path

from evaluator import __version__
from evaluator._provenance import machine_provenance
from evaluator.latency import LatencyProtocol
from evaluator.metrics import Tally, deflate_size, parameter_counts
from evaluator.reference import REFERENCE_VERSION
from evaluator.sandbox import ChildOutcome, SandboxLimits, run_child
from evaluator.tasks import get_task

__all__ = ["score", "LatencyProtocol", "ScoringError", "SCORECARD_KEYS", "FAILURE_KINDS"]

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_MEMORY_LIMIT_MB = 4096
SPLIT_CHOICES = ("public", "private", "all")
FAILURE_KINDS = ("invalid", "timeout", "memory", "crash", "bad_output")
METRIC_KEYS = (
    "accuracy", "bits_per_char", "latency_ms", "latency_p90_ms", "latency_mean_ms",
    "reference_latency_ms", "speed_index", "size_bytes", "raw_bytes", "params", "nonzero_params",
    "peak_memory_mb", "throughput",
)
SCORECARD_KEYS = (
    "task", "split", "valid", "error", "failure_kind", *METRIC_KEYS, "latency_runs",
    "latency_noisy", "latency_attempts", "context_length", "splits", "provenance", "protocol",
    "sandbox", "timings", "validation",
)
# What the child was doing at each stage, for messages.
_STAGE_WORDS = {
    "loading": "loading the model",
    "accuracy": "scoring the hidden set",
    "throughput": "measuring throughput",
    "latency": "measuring latency",
}


class ScoringError(Exception):
    """The platform could not score (not the model's fault): safe to retry later."""


def _read_model(model: bytes | str | os.PathLike) -> bytes:
    if isinstance(model, bytes | bytearray | memoryview):
        return bytes(model)
    try:
        return Path(model).read_bytes()
    except OSError as error:
        raise ScoringError(f"could not read the model file {model}: {error.strerror}") from error


def _blank(task: str, split: str, protocol: LatencyProtocol, limits: SandboxLimits) -> dict:
    card: dict = dict.fromkeys(SCORECARD_KEYS)
    language = get_task(task).is_language_model
    card.update(
        task=task,
        split=split,
        valid=False,
        splits={name: Tally().to_dict(language) for name in ("public", "private")},
        protocol={**protocol.to_dict(), "reference_version": REFERENCE_VERSION},
        sandbox=limits.to_dict(),
    )
    for name in card["splits"].values():
        name["accuracy"] = name["bits_per_char"] = name["count"] = None
    return card


def _timeout_message(outcome: ChildOutcome, limits: SandboxLimits) -> str:
    doing = _STAGE_WORDS.get(outcome.last_stage, "running")
    return (
        f"The model did not finish within the time limit ({limits.timeout_s:g} s wall clock, "
        f"{limits.cpu_seconds} s CPU) and was stopped while {doing}. Look for a Loop that never "
        f"ends or a model far too slow for this task."
    )


def _failure_without_result(outcome: ChildOutcome, limits: SandboxLimits) -> tuple[str, str]:
    """Classify a child that ended without its result line (it was killed or died)."""
    if outcome.last_stage not in _STAGE_WORDS:
        raise ScoringError(
            f"the scoring process ended before running the model (exit {outcome.returncode}): "
            f"{outcome.stderr_tail[-1000:]}"
        )
    doing = _STAGE_WORDS[outcome.last_stage]
    signal_number = outcome.killed_by
    if outcome.timed_out or signal_number == signal.SIGXCPU:
        return "timeout", _timeout_message(outcome, limits)
    # SIGKILL that was not our timeout's: on Linux that is the kernel's out-of-memory killer.
    if "bad_alloc" in outcome.stderr_tail or signal_number == signal.SIGKILL:
        return "memory", (
            f"The model used more memory than the {limits.memory_limit_mb} MB limit while {doing} "
            f"and was stopped."
        )
    how = signal.Signals(signal_number).name if signal_number else f"exit code {outcome.returncode}"
    return "crash", f"onnxruntime crashed ({how}) while {doing}."


def _fill_metrics(card: dict, metrics: dict, language: bool) -> None:
    tallies = {name: Tally(**values) for name, values in metrics["splits"].items()}
    card["splits"] = {name: tally.to_dict(language) for name, tally in tallies.items()}
    chosen = Tally()
    for name, tally in tallies.items():
        if card["split"] in (name, "all"):
            chosen.add(tally)
    latency = metrics["latency"]
    card.update(
        accuracy=chosen.accuracy,
        bits_per_char=chosen.bits_per_char if language else None,
        latency_ms=latency["model"]["median_ms"],
        latency_p90_ms=latency["model"]["p90_ms"],
        latency_mean_ms=latency["model"]["mean_ms"],
        reference_latency_ms=latency["reference"]["median_ms"],
        speed_index=latency["speed_index"],
        latency_runs=latency["model"]["runs"],
        latency_noisy=latency["noisy"],
        latency_attempts=latency["attempts"],
        peak_memory_mb=metrics["peak_memory_mb"],
        throughput=metrics["throughput"],
        context_length=metrics["context_length"],
    )
    card["timings"].update(metrics["stage_seconds"])
    # How close the run came to the address-space cap (RLIMIT_AS counts mappings, not RSS).
    card["sandbox"]["peak_address_space_mb"] = metrics["peak_address_space_mb"]


def _validate(model_bytes: bytes, task: str):
    from evaluator.validation import validate  # onnx parsing only; nothing runs the model here

    return validate(model_bytes, task)


def _dataset_sha256(task: str, data_dir: Path) -> str:
    from evaluator.datasets import DatasetNotPrepared, dataset_sha256

    try:
        return dataset_sha256(task, data_dir)
    except DatasetNotPrepared as error:
        raise ScoringError(str(error)) from error


def _resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    from evaluator.datasets import default_data_dir

    return Path(data_dir if data_dir is not None else default_data_dir()).expanduser().resolve()


def score(
    model: bytes | str | os.PathLike,
    task: str,
    *,
    split: str = "all",
    data_dir: str | os.PathLike | None = None,
    protocol: LatencyProtocol | None = None,
    timeout_s: float | None = None,
    memory_limit_mb: int | None = None,
) -> dict:
    """Score ``model`` (bytes or a path to a ``.onnx`` file) on ``task``'s hidden set.

    Both halves of the hidden set are always scored (``splits``); the top-level ``accuracy`` and
    ``bits_per_char`` are those of ``split`` (``all`` pools the two halves).
    """
    spec = get_task(task)
    if split not in SPLIT_CHOICES:
        raise ValueError(f"unknown split {split!r}; the splits are: {', '.join(SPLIT_CHOICES)}")
    protocol = protocol or LatencyProtocol.standard()
    limits = SandboxLimits(
        timeout_s=timeout_s or DEFAULT_TIMEOUT_S,
        memory_limit_mb=memory_limit_mb or DEFAULT_MEMORY_LIMIT_MB,
    ).resolved()
    card = _blank(task, split, protocol, limits)
    model_bytes = _read_model(model)
    root = _resolve_data_dir(data_dir)
    card["provenance"] = {
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "dataset_sha256": None,
        "evaluator_version": __version__,
        **machine_provenance(),
    }
    card.update(raw_bytes=len(model_bytes), size_bytes=deflate_size(model_bytes))

    report = _validate(model_bytes, task)
    card["validation"] = report.to_dict()
    if not report.ok or report.model_bytes is None:
        # A rejected model needs no data; the hash is recorded when the data is there.
        with contextlib.suppress(ScoringError):
            card["provenance"]["dataset_sha256"] = _dataset_sha256(task, root)
        card.update(failure_kind="invalid", error=report.summary())
        return card
    card["provenance"]["dataset_sha256"] = _dataset_sha256(task, root)
    import onnx

    card["params"], card["nonzero_params"] = parameter_counts(onnx.load_from_string(report.model_bytes))
    context = None
    if spec.is_language_model:  # a dynamic context is scored at the largest allowed
        context = report.info.get("context_length") or spec.max_context
    job = {"task": task, "data_dir": str(root), "protocol": protocol.to_dict(),
           "context_length": context}
    try:
        outcome = run_child(job, report.model_bytes, limits)
    except OSError as error:
        raise ScoringError(f"could not start the scoring process: {error}") from error
    return _finish(card, outcome, limits, spec.is_language_model)


def _finish(card: dict, outcome: ChildOutcome, limits: SandboxLimits, language: bool) -> dict:
    card["sandbox"] = {**limits.to_dict(), **(outcome.stage_info("sandbox") or {}),
                       "wall_seconds": outcome.wall_seconds}
    card["timings"] = {"child_wall": outcome.wall_seconds}
    result = outcome.result
    if result is None:
        card["failure_kind"], card["error"] = _failure_without_result(outcome, limits)
        return card
    if result["status"] == "platform_error":
        raise ScoringError(result["message"])
    if result["status"] == "fault":
        card.update(failure_kind=result["kind"], error=result["message"])
        return card
    metrics = result["metrics"]
    _fill_metrics(card, metrics, language)
    card["provenance"].update(
        onnxruntime_version=metrics["versions"]["onnxruntime"],
        onnx_version=metrics["versions"]["onnx"],
        numpy_version=metrics["versions"]["numpy"],
    )
    card["valid"] = True
    return card
