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
from evaluator.numerics import warning_for
from evaluator.reference import REFERENCE_VERSION
from evaluator.sandbox import (
    ChildOutcome,
    IsolationUnavailable,
    SandboxLimits,
    StageDeadlines,
    isolation_message,
    missing_isolation,
    run_child,
)
from evaluator.tasks import get_task

__all__ = ["score", "LatencyProtocol", "ScoringError", "IsolationError", "HiddenSetMissing",
           "SCORECARD_KEYS", "FAILURE_KINDS"]

DEFAULT_TIMEOUT_S = 600.0
# SPEC §4's default latency limit, and the probe: a first batch-1 inference still running after
# PROBE_MARGIN x the limit (at least PROBE_MIN_S) can never be ranked, so the scoring ends there.
DEFAULT_LATENCY_LIMIT_MS = 100.0
PROBE_MARGIN = 20.0
PROBE_MIN_S = 5.0
# The time budget after the probe: BUDGET_FACTOR x the inferences the protocol needs at the probe's
# per-inference cost (a batch-1 cost bounds the batched cost per input), plus the timing loops'
# own wall-clock caps, plus BUDGET_SLACK_S; never more than the configured timeout.
BUDGET_FACTOR = 4.0
BUDGET_SLACK_S = 30.0  # includes the numerics check's numpy evaluator on integer-kernel graphs
DEFAULT_MEMORY_LIMIT_MB = 4096
SPLIT_CHOICES = ("public", "private", "all")
FAILURE_KINDS = ("invalid", "timeout", "too_slow", "memory", "crash", "bad_output")
METRIC_KEYS = (
    "accuracy", "bits_per_char", "latency_ms", "latency_p90_ms", "latency_mean_ms",
    "reference_latency_ms", "speed_index", "speed_index_ci", "latency_ci_ms", "size_bytes", "raw_bytes", "params", "nonzero_params",
    "peak_memory_mb", "throughput",
)
SCORECARD_KEYS = (
    "task", "split", "valid", "error", "failure_kind", *METRIC_KEYS, "latency_runs",
    "latency_noisy", "latency_attempts", "context_length", "splits", "provenance", "protocol",
    "sandbox", "timings", "validation", "numerics", "warnings", "hidden_set", "train_gap",
)
# What the child was doing at each stage, for messages.
_STAGE_WORDS = {
    "loading": "loading the model",
    "probe": "running its first batch-1 inference",
    "accuracy": "scoring the hidden set",
    "numerics": "checking its numerics against the reference execution",
    "throughput": "measuring throughput",
    "latency": "measuring latency",
}


class ScoringError(Exception):
    """The platform could not score (not the model's fault): safe to retry later."""


class HiddenSetMissing(ScoringError):
    """The hidden set the job names is not prepared on this machine: the platform's fault (a
    worker without the set), never the model's; another worker that has it may score it."""


class IsolationError(ScoringError, IsolationUnavailable):
    """A required isolation (``score(require_isolation=...)``) did not take effect: the worker is
    misconfigured, and the model was not run."""


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
        warnings=[],
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


def _seconds_words(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} minutes"


def _too_slow_message(outcome: ChildOutcome, latency_limit_ms: float) -> str:
    waited = outcome.expired_after_s or 0.0
    return (
        f"The model's first batch-1 inference was still running after {_seconds_words(waited)} "
        f"and was stopped: the latency limit is {latency_limit_ms:g} ms, and a first inference "
        f"more than {PROBE_MARGIN:g}x over it (at least {PROBE_MIN_S:g} s) can never be ranked. "
        f"Look for a Loop that never ends or a model far too large for this task."
    )


def _budget_message(outcome: ChildOutcome) -> str:
    doing = _STAGE_WORDS.get(outcome.last_stage, "running")
    probe = next((s for s in outcome.stages if "probe_seconds" in s), {})
    first = probe.get("probe_seconds")
    basis = f" (set from its first inference, {_seconds_words(first)})" if first else ""
    return (
        f"The model did not finish within its time budget of "
        f"{_seconds_words(outcome.expired_after_s or 0.0)}{basis} and was stopped while {doing}: "
        f"it runs far slower on the hidden set than its first inference suggested. Look for work "
        f"that grows with the batch size (the hidden set is scored in batches)."
    )


def _failure_without_result(
    outcome: ChildOutcome, limits: SandboxLimits, latency_limit_ms: float = DEFAULT_LATENCY_LIMIT_MS
) -> tuple[str, str]:
    """Classify a child that ended without its result line (it was killed or died)."""
    if outcome.expired == "startup":
        raise ScoringError(
            f"the scoring process was not ready within {outcome.expired_after_s:g} s (before the "
            f"model ran; the machine may be overloaded): {outcome.stderr_tail[-500:]}"
        )
    if outcome.expired == "probe":
        return "too_slow", _too_slow_message(outcome, latency_limit_ms)
    if outcome.expired == "budget":
        return "timeout", _budget_message(outcome)
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


def _fill_train_gap(card: dict, metrics: dict) -> None:
    from evaluator.train_gap import summarize

    if card.get("task") is None:  # a card put together by hand (tests of _finish)
        return
    tallies = {name: Tally(**values) for name, values in metrics["splits"].items()}
    train = metrics.get("train_sample")
    public = bool((card.get("hidden_set") or {}).get("public"))
    card["train_gap"] = summarize(Tally(**train) if train else None, tallies,
                                  get_task(card["task"]).kind, public)


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
        speed_index_ci=latency.get("speed_index_ci"),
        latency_ci_ms=latency.get("latency_ci_ms"),
        latency_runs=latency["model"]["runs"],
        latency_noisy=latency["noisy"],
        latency_attempts=latency["attempts"],
        peak_memory_mb=metrics["peak_memory_mb"],
        throughput=metrics["throughput"],
        context_length=metrics["context_length"],
    )
    card["timings"].update(metrics["stage_seconds"])
    card["timings"]["probe_inference"] = metrics.get("probe_seconds")
    # How close the run came to the address-space cap (RLIMIT_AS counts mappings, not RSS).
    card["sandbox"]["peak_address_space_mb"] = metrics["peak_address_space_mb"]


def _fill_numerics(card: dict, numerics: dict | None) -> None:
    if numerics is None:
        return
    quantized = bool(numerics.pop("quantized", False))
    card["numerics"] = numerics
    if not numerics["ok"]:
        card["warnings"].append(
            warning_for(numerics, quantized, card["provenance"].get("hardware_class") or "unknown"))


def _validate(model_bytes: bytes, task: str):
    from evaluator.validation import validate  # onnx parsing only; nothing runs the model here

    return validate(model_bytes, task)


def hidden_set_card(task: str, data_dir: Path, hidden_set: str | None) -> dict:
    """The scorecard's ``hidden_set``: which set the model is scored on and whether its labels are
    public; ``HiddenSetMissing`` when an imported set is not on this machine."""
    from evaluator.datasets import DatasetNotPrepared, hidden_set_entry

    name = hidden_set or task
    try:
        entry = hidden_set_entry(name, data_dir, task)
    except DatasetNotPrepared as error:
        if name == task:
            raise ScoringError(str(error)) from error
        raise HiddenSetMissing(str(error)) from error
    return {"name": name, "public": bool(entry.get("public")), "standard": name == task,
            "sha256": entry["sha256"], "count": entry["counts"]["test"]}


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
    latency_limit_ms: float | None = None,
    require_isolation: tuple[str, ...] | list[str] = (),
    hidden_set: str | None = None,
) -> dict:
    """Score ``model`` (bytes or a path to a ``.onnx`` file) on ``task``'s hidden set.

    Both halves of the hidden set are always scored (``splits``); the top-level ``accuracy`` and
    ``bits_per_char`` are those of ``split`` (``all`` pools the two halves). ``latency_limit_ms``
    (default: SPEC §4's 100 ms) sets the probe deadline of the first batch-1 inference.
    ``require_isolation`` (names of ``evaluator.sandbox.ISOLATIONS``): the child refuses to read
    the model unless each took effect, and ``IsolationError`` (a ``ScoringError``) is raised.
    ``hidden_set``: score on this imported set of the task instead of its standard set
    (``HiddenSetMissing``, a ``ScoringError``, when it is not prepared in ``data_dir``). The card
    says which set (``hidden_set``) and holds the train gap and its flag (``train_gap``).
    """
    spec = get_task(task)
    if split not in SPLIT_CHOICES:
        raise ValueError(f"unknown split {split!r}; the splits are: {', '.join(SPLIT_CHOICES)}")
    protocol = protocol or LatencyProtocol.standard()
    limits = SandboxLimits(
        timeout_s=timeout_s or DEFAULT_TIMEOUT_S,
        memory_limit_mb=memory_limit_mb or DEFAULT_MEMORY_LIMIT_MB,
        require_isolation=tuple(require_isolation),
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
            card["hidden_set"] = hidden_set_card(task, root, hidden_set)
            card["provenance"]["dataset_sha256"] = card["hidden_set"]["sha256"]
        card.update(failure_kind="invalid", error=report.summary())
        return card
    card["hidden_set"] = hidden_set_card(task, root, hidden_set)
    card["provenance"]["dataset_sha256"] = card["hidden_set"]["sha256"]
    import onnx

    card["params"], card["nonzero_params"] = parameter_counts(onnx.load_from_string(report.model_bytes))
    context = None
    if spec.is_language_model:  # a dynamic context is scored at the largest allowed
        context = report.info.get("context_length") or spec.max_context
    job = {"task": task, "data_dir": str(root), "protocol": protocol.to_dict(),
           "context_length": context, "hidden_set": card["hidden_set"]["name"]}
    limit_ms = DEFAULT_LATENCY_LIMIT_MS if latency_limit_ms is None else float(latency_limit_ms)
    if not limit_ms > 0:
        raise ValueError(f"latency_limit_ms must be positive, not {latency_limit_ms!r}")
    deadlines = StageDeadlines(
        probe_s=probe_deadline_s(limit_ms),
        budget=lambda stage: time_budget_s(stage, protocol),
    )
    try:
        outcome = run_child(job, report.model_bytes, limits, deadlines)
    except OSError as error:
        raise ScoringError(f"could not start the scoring process: {error}") from error
    return _finish(card, outcome, limits, spec.is_language_model, limit_ms, deadlines)


def probe_deadline_s(latency_limit_ms: float) -> float:
    """How long the first batch-1 inference may run: PROBE_MARGIN x the limit, >= PROBE_MIN_S."""
    return max(PROBE_MARGIN * latency_limit_ms / 1000, PROBE_MIN_S)


def time_budget_s(stage: dict, protocol: LatencyProtocol) -> float | None:
    """Seconds the rest of a run may take, from the probe's time and the protocol's inferences.

    ``stage`` is the child's first stage line after the probe: ``probe_seconds`` (one batch-1
    inference) and ``samples`` (inputs of the accuracy pass). Unbounded (None) if it lacks them.
    """
    try:
        per = max(float(stage["probe_seconds"]), 1e-4)
        samples = int(stage["samples"])
    except (KeyError, TypeError, ValueError):
        return None
    from evaluator.numerics import SAMPLE_IMAGES

    # Accuracy pass, and the numerics check (the same sample twice, once unoptimized: a QDQ graph
    # runs several times slower unfused).
    inferences = samples + 2 * SAMPLE_IMAGES * 4
    throughput = protocol.max_seconds + 2 * per * protocol.throughput_batch
    latency = max(1, protocol.max_attempts) * (
        protocol.max_seconds + 2 * per * (protocol.warmup_runs + 2))
    return BUDGET_FACTOR * per * inferences + throughput + latency + BUDGET_SLACK_S


def _finish(card: dict, outcome: ChildOutcome, limits: SandboxLimits, language: bool,
            latency_limit_ms: float, deadlines: StageDeadlines) -> dict:
    card["sandbox"] = {**limits.to_dict(), **(outcome.stage_info("sandbox") or {}),
                       "wall_seconds": outcome.wall_seconds,
                       "model_seconds": outcome.model_seconds,
                       "latency_limit_ms": latency_limit_ms,
                       "probe_deadline_s": deadlines.probe_s,
                       "time_budget_s": outcome.time_budget_s,
                       "timing_nice": outcome.timing_nice}
    card["timings"] = {"child_wall": outcome.wall_seconds}
    result = outcome.result
    if result is None:
        card["failure_kind"], card["error"] = _failure_without_result(
            outcome, limits, latency_limit_ms)
        return card
    if result["status"] == "isolation_missing":
        raise IsolationError(result["message"])
    if result["status"] == "platform_error":
        raise ScoringError(result["message"])
    # The child refused already; checked again here on what it reported, in case it did not.
    missing = missing_isolation(limits.require_isolation, result.get("sandbox") or {})
    if missing and result["status"] == "ok":
        raise IsolationError(isolation_message(missing))
    if result["status"] == "fault":
        card.update(failure_kind=result["kind"], error=result["message"])
        return card
    metrics = result["metrics"]
    _fill_metrics(card, metrics, language)
    _fill_train_gap(card, metrics)
    _fill_numerics(card, metrics.get("numerics"))
    card["provenance"].update(
        onnxruntime_version=metrics["versions"]["onnxruntime"],
        onnx_version=metrics["versions"]["onnx"],
        numpy_version=metrics["versions"]["numpy"],
    )
    card["valid"] = True
    return card
