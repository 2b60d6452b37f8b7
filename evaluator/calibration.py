"""A hardware class's calibration: each task's reference latency on this machine.

The platform turns a speed index into a normalized latency (calibration[task] / speed_index, in ms)
so one latency limit and one speed ranking hold across workers of different speed. The reference
basket is timed in the same sandboxed, pinned child process and with the same protocol as a scoring
run, but with no model: against a second session of its first member.
"""

from __future__ import annotations

from evaluator.hardware import cpu_features, hardware_class
from evaluator.latency import LatencyProtocol
from evaluator.reference import REFERENCE_VERSION
from evaluator.sandbox import SandboxLimits, run_child
from evaluator.tasks import get_task

__all__ = ["calibrate_reference"]

CALIBRATION_TIMEOUT_S = 300.0


def calibrate_reference(task: str, protocol: LatencyProtocol | None = None) -> dict:
    """The reference latency of ``task`` (median ms and its 95% interval) on this machine.

    Raises ``evaluator.scoring.ScoringError`` if the child fails (never a model's fault: no model).
    """
    from evaluator.scoring import ScoringError

    get_task(task)  # an unknown task is the caller's error (ValueError)
    protocol = protocol or LatencyProtocol.standard()
    limits = SandboxLimits(timeout_s=CALIBRATION_TIMEOUT_S).resolved()
    job = {"task": task, "data_dir": None, "protocol": protocol.to_dict(), "context_length": None,
           "calibrate": True}
    try:
        outcome = run_child(job, b"", limits)
    except OSError as error:
        raise ScoringError(f"could not start the calibration process: {error}") from error
    result = outcome.result
    if result is None or result.get("status") != "ok":
        detail = (result or {}).get("message") or outcome.stderr_tail[-1000:]
        raise ScoringError(f"calibrating {task} failed (exit {outcome.returncode}): {detail}")
    latency = result["metrics"]["latency"]
    # The model was the basket's first member: the basket's latency is its reference side's
    # geometric mean; the interval is the member's, scaled to it.
    basket_ms = latency["reference"]["median_ms"]
    scale = basket_ms / latency["model"]["median_ms"]
    interval = latency["latency_ci_ms"]
    return {
        "task": task,
        "reference_latency_ms": basket_ms,
        "reference_latency_ci_ms": [bound * scale for bound in interval] if interval else None,
        "hardware_class": hardware_class(),
        "cpu_features": cpu_features(),
        "reference_version": REFERENCE_VERSION,
        "noisy": latency["noisy"],
        "runs": latency["model"]["runs"],
        "pinned_cpu": (result.get("sandbox") or {}).get("pinned_cpu"),
    }
