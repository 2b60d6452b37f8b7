"""The scoring child: the only place a submitted model ever runs (``python -m evaluator._child JOB``).

The parent (``evaluator.sandbox.run_child``) passes the job as JSON in argv and the validated,
re-serialized model bytes on stdin. The child locks itself down first (``apply_child_limits``),
before it imports numpy or onnxruntime, then memory-maps the hidden data read-only, drops root
(``drop_privileges``), and only then reads the model from stdin, scores it, and writes
JSON lines on its original stdout: stage lines (``{"stage": ...}``) as it goes, so the parent knows
where a killed child was, and one final ``{"result": ...}`` line. Anything else that writes to
stdout (a library's print) is sent to stderr instead.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback

from evaluator.sandbox import (
    apply_child_limits,
    isolation_message,
    lock_down_user,
    missing_isolation,
)


class Channel:
    """Writes JSON lines to the stdout the parent reads, whatever else the process prints."""

    def __init__(self) -> None:
        self._fd = os.dup(1)
        os.dup2(2, 1)

    def send(self, message: dict) -> None:
        os.write(self._fd, (json.dumps(message) + "\n").encode())


def _memory_kind(message: str) -> bool:
    lowered = message.lower()
    return "bad_alloc" in lowered or "failed to allocate" in lowered or "memoryerror" in lowered


def _runtime_detail(message: str) -> str:
    """The useful part of an onnxruntime error: which node failed, and how."""
    node = re.search(r"running (\w+) node\. Name:'([^']*)'", message)
    where = ""
    if node:
        name = f" '{node.group(2)}'" if node.group(2) else ""
        where = f" in {node.group(1)} node{name}"
    size = re.search(r"buffer of size (\d+)", message)
    if size:
        return f"it asked for {int(size.group(1)) / 1e9:.1f} GB{where}"
    status = re.search(r"Status Message: (.*)", message)
    text = status.group(1) if status else (message.strip().splitlines() or [""])[0]
    return f"{text[:400]}{where}"


def _fault_from_runtime_error(error: BaseException, doing: str) -> tuple[str, str]:
    """Turn an onnxruntime exception into a failure kind and a student-readable message."""
    message = str(error) or type(error).__name__
    if isinstance(error, MemoryError) or _memory_kind(message):
        return (
            "memory",
            f"The model needed more memory than the limit allows while {doing}: "
            f"{_runtime_detail(message)}.",
        )
    return "crash", f"onnxruntime failed while {doing}: {_runtime_detail(message)}."


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    channel = Channel()
    sandbox_report = apply_child_limits(job["limits"])
    channel.send({"stage": "started", "sandbox": sandbox_report})

    try:
        from evaluator import _evaluate  # heavy imports only after the limits are in place

        hidden = _evaluate.load_splits(job)
        _evaluate.prepare(job)
        lock_down_user(job["limits"], sandbox_report)
    except Exception as error:  # the platform's fault: no model code has run yet
        channel.send({"result": {
            "status": "platform_error",
            "message": f"could not load the hidden data: {type(error).__name__}: {error}",
            "traceback": traceback.format_exc()[-2000:],
        }})
        return 0
    missing = missing_isolation(job["limits"].get("require_isolation") or (), sandbox_report)
    if missing:  # refuse before a single byte of the model is read
        channel.send({"result": {"status": "isolation_missing", "missing": missing,
                                 "message": isolation_message(missing), "sandbox": sandbox_report}})
        return 0
    channel.send({"stage": "ready", "sandbox": sandbox_report})
    model_bytes = sys.stdin.buffer.read()

    def stage(name: str, **info) -> None:
        channel.send({"stage": name, **info})

    try:
        if job.get("calibrate"):  # no model: the reference alone, timed as in a scoring run
            metrics = _evaluate.calibrate_in_process(job, stage)
        else:
            metrics = _evaluate.score_in_process(model_bytes, job, hidden, stage)
    except _evaluate.ModelFault as fault:
        channel.send({"result": {"status": "fault", "kind": fault.kind, "message": str(fault)}})
        return 0
    except _evaluate.RuntimeFailure as failure:
        kind, message = _fault_from_runtime_error(failure.error, failure.doing)
        channel.send({"result": {"status": "fault", "kind": kind, "message": message}})
        return 0
    except MemoryError:  # numpy work on the model's outputs hit the address-space cap
        channel.send({"result": {"status": "fault", "kind": "memory", "message":
                                 "The model's outputs did not fit in the memory limit."}})
        return 0
    except Exception as error:  # a bug of ours, not the model's: the platform retries
        channel.send({"result": {
            "status": "platform_error",
            "message": f"internal error while scoring: {type(error).__name__}: {error}",
            "traceback": traceback.format_exc()[-2000:],
        }})
        return 0
    channel.send({"result": {"status": "ok", "metrics": metrics, "sandbox": sandbox_report}})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
