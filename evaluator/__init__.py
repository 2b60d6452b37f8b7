"""Score untrusted ONNX models on hidden data, safely and reproducibly.

Plain Python (numpy, onnx, onnxruntime, psutil): no Django, so a student can score a model locally.
The public entry points:

- ``evaluator.tasks``: what each task's model must take and return (``TASKS``, ``get_task``).
- ``evaluator.validation.validate``: the gate every upload passes before onnxruntime sees it.
- ``evaluator.scoring.score``: run a model in a locked-down child process and return a scorecard.
- ``evaluator.datasets``: read, prepare and cache the datasets; the hidden splits.
"""

__version__ = "0.1.0"
