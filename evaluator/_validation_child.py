"""The validation child (``python -m evaluator._validation_child JOB``), see
``evaluator.validation.isolated``. It locks itself down before it imports onnx, reads the model
bytes on stdin, and writes one JSON line: the report, plus the SHA-256 of the checked bytes."""

from __future__ import annotations

import hashlib
import json
import os
import sys

from evaluator.sandbox import (
    apply_child_limits,
    isolation_message,
    lock_down_user,
    missing_isolation,
)


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    out = os.dup(1)
    os.dup2(2, 1)  # whatever a library prints must not corrupt the answer line
    sandbox = apply_child_limits(job["limits"])
    try:
        from evaluator.validation import validate  # heavy imports only after the limits
    except BaseException as error:  # the platform's fault: no model byte has been looked at
        os.write(out, (json.dumps({"internal_error": f"import failed: {error!r}"}) + "\n").encode())
        return 1
    # Every module is imported: the untrusted bytes are parsed as nobody (when started as root).
    lock_down_user(job["limits"], sandbox)
    missing = missing_isolation(job["limits"].get("require_isolation") or (), sandbox)
    if missing:  # refuse before a byte of the file is read
        os.write(out, (json.dumps({"isolation_missing": isolation_message(missing),
                                   "sandbox": sandbox}) + "\n").encode())
        return 0
    data = sys.stdin.buffer.read()
    try:
        report = validate(data, job["task"], max_bytes=job["max_bytes"],
                          memory_cap_bytes=job["memory_cap_bytes"])
    except MemoryError:  # onnx hit the address-space limit: the model's size is the cause
        answer = {"out_of_memory": True}
    except Exception as error:  # a bug of ours, not the model's
        answer = {"internal_error": f"{type(error).__name__}: {error}"[:2000]}
    else:
        answer = report.to_dict()
        answer["sha256"] = hashlib.sha256(report.model_bytes).hexdigest() if report.ok else None
    answer["sandbox"] = sandbox
    os.write(out, (json.dumps(answer) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
