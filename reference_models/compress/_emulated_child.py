"""Run by ``portability.run_emulated`` inside ``qemu-x86_64``: every model of a job folder through
the scorer's session settings, outputs saved next to the inputs. Standalone (``python -I``): it
imports only onnxruntime, numpy and the evaluator's session settings."""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from evaluator.runtime import session_options  # noqa: E402 - after the repository is on the path


def main(folder: str) -> int:
    root = Path(folder)
    job = json.loads((root / "job.json").read_text())
    batch = job["batch"]
    for key in job["keys"]:
        runner = ort.InferenceSession((root / f"{key}.onnx").read_bytes(),
                                      sess_options=session_options(),
                                      providers=["CPUExecutionProvider"])
        name = runner.get_inputs()[0].name
        inputs = np.load(root / f"{key}.in.npy")
        outputs = [runner.run(None, {name: inputs[i:i + batch]})[0]
                   for i in range(0, len(inputs), batch)]
        np.save(root / f"{key}.out.npy", np.concatenate(outputs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
