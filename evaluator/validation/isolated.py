"""The validation gate in a locked-down child process, for callers that must survive any file.

``validate`` runs onnx's C++ checker and shape inference on untrusted bytes in the caller's
process; a crash there (onnx has had memory-safety bugs in shape inference) would take a web
worker down with it. ``validate_isolated`` runs the same ``validate`` in a child under the
scoring sandbox's limits (empty working directory, scrubbed environment, address-space, CPU-time
and open-file limits, no core dumps, no network where the OS allows, a wall-clock timeout that
kills the child's whole process group) and turns a crash or timeout into a refusal.

Costs about half a second more than ``validate`` (starting Python and importing onnx).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile

import onnx

from evaluator.onnx_facts import MAX_MODEL_BYTES, MEMORY_CAP_BYTES
from evaluator.sandbox import (
    IsolationUnavailable,
    SandboxLimits,
    isolation_message,
    missing_isolation,
)
from evaluator.validation import ModelSource, read_model
from evaluator.validation.report import Problem, ValidationReport

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRASH_FIX = (
    "re-export the model with a current exporter; run onnx.checker.check_model(model, "
    "full_check=True) locally, which should fail the same way"
)


def validation_limits(timeout_s: float = 60.0, memory_limit_mb: int = 3072,
                      require_isolation: tuple[str, ...] = ()) -> SandboxLimits:
    """Limits for a validation child: pinned to the first core (scoring uses the last one)."""
    return SandboxLimits(timeout_s=timeout_s, memory_limit_mb=memory_limit_mb,
                         cpu=min(os.sched_getaffinity(0)), require_isolation=require_isolation)


def validate_isolated(
    model: ModelSource,
    task: str,
    *,
    max_bytes: int = MAX_MODEL_BYTES,
    memory_cap_bytes: int = MEMORY_CAP_BYTES,
    limits: SandboxLimits | None = None,
) -> ValidationReport:
    """``validate`` in a child process; the same report, or a refusal if the child died.

    Raises ``ValueError`` for an unknown task, ``IsolationUnavailable`` if an isolation of
    ``limits.require_isolation`` did not take effect (the file was not read), and ``RuntimeError``
    if the child's answer cannot be trusted (both platform faults, not the student's).
    """
    from evaluator.tasks import get_task

    get_task(task)
    data, problem = read_model(model, max_bytes)
    if problem:
        return ValidationReport(False, task, [problem], {})
    job = {"task": task, "max_bytes": max_bytes, "memory_cap_bytes": memory_cap_bytes,
           "limits": {**(limits or validation_limits()).resolved().to_dict(),
                      "parent_pid": os.getpid()}}
    answer, death = _run(job, data, job["limits"]["timeout_s"])
    if answer is None:
        return ValidationReport(False, task, [Problem("crash", death, None, CRASH_FIX)],
                                {"raw_bytes": len(data)})
    if "isolation_missing" in answer:
        raise IsolationUnavailable(answer["isolation_missing"])
    missing = missing_isolation(job["limits"]["require_isolation"], answer.get("sandbox") or {})
    if missing:  # the child refuses itself; checked again on what it reported
        raise IsolationUnavailable(isolation_message(missing))
    if "internal_error" in answer:
        raise RuntimeError(f"the validation child failed: {answer['internal_error']}")
    if answer.get("out_of_memory"):
        megabytes = job["limits"]["memory_limit_mb"]
        problem = Problem("memory", f"checking the model needed more than {megabytes} MB",
                          None, "make the model smaller")
        return ValidationReport(False, task, [problem], {"raw_bytes": len(data)})
    report = ValidationReport(answer["ok"], answer["task"],
                              [Problem(**p) for p in answer["problems"]], answer["info"])
    if report.ok:
        report.model_bytes = _reserialized(data, answer["sha256"])
    return report


def _reserialized(data: bytes, expected_sha256: str) -> bytes:
    """The checked bytes, rebuilt here with the same parser (protobuf only, no onnx C++)."""
    proto = onnx.ModelProto()
    proto.ParseFromString(data)
    proto.DiscardUnknownFields()
    checked = proto.SerializeToString()
    if hashlib.sha256(checked).hexdigest() != expected_sha256:
        raise RuntimeError("the validation child checked different bytes than the parent rebuilt")
    return checked


def _run(job: dict, data: bytes, timeout_s: float) -> tuple[dict | None, str]:
    """The child's report dict, or None and why the child gave none."""
    env = {"PATH": os.defpath, "PYTHONPATH": _PACKAGE_ROOT, "PYTHONDONTWRITEBYTECODE": "1",
           "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="arena-validate-") as workdir:
        process = subprocess.Popen(
            [sys.executable, "-s", "-m", "evaluator._validation_child", json.dumps(job)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=workdir, env=env, start_new_session=True, close_fds=True,
        )
        try:
            stdout, _ = process.communicate(data, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            return None, f"checking the model took longer than {timeout_s:g} seconds"
        finally:
            _kill_group(process)
    try:
        return json.loads(stdout.decode("utf-8").strip().splitlines()[-1]), ""
    except (IndexError, UnicodeDecodeError, json.JSONDecodeError):
        code = process.returncode
        if code == -signal.SIGXCPU:
            return None, "checking the model used more CPU time than allowed"
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return None, f"onnx's checker crashed on this file ({how}) instead of reporting a problem"


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
