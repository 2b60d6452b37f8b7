"""What validation found: a list of problems a student can act on, and facts about the model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Problem:
    """One reason a model is refused.

    ``rule`` is a short stable id (``external-data``, ``custom-domain``, ``opset``, ``signature``,
    ...); ``where`` names the offending node or tensor; ``fix`` says what to change.
    """

    rule: str
    message: str
    where: str | None = None
    fix: str | None = None

    def line(self) -> str:
        place = f" at {self.where}" if self.where else ""
        text = f"[{self.rule}]{place}: {self.message}"
        return f"{text}\n    fix: {self.fix}" if self.fix else text


@dataclass
class ValidationReport:
    """The verdict. ``model_bytes`` (only when ok) are what onnxruntime must be given."""

    ok: bool
    task: str
    problems: list[Problem] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    model_bytes: bytes | None = field(default=None, repr=False)

    def summary(self) -> str:
        """Readable text: an OK line with the model's facts, or every problem with its fix."""
        if self.ok:
            return f"OK: the model is valid for task '{self.task}'. {_describe(self.info)}".rstrip()
        count = len(self.problems)
        head = f"REJECTED for task '{self.task}': {count} problem{'s' if count != 1 else ''}."
        return "\n".join([head, *(f"  - {problem.line()}" for problem in self.problems)])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (without the model bytes)."""
        return {
            "ok": self.ok,
            "task": self.task,
            "problems": [asdict(problem) for problem in self.problems],
            "info": self.info,
        }


def format_shape(dims) -> str:
    """``[N, 1, 28, 28]``: numbers as they are, symbolic dims by name, unknown dims as ``?``."""
    if dims is None:
        return "[?]"
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _describe(info: dict[str, Any]) -> str:
    parts = []
    for key, label in (("inputs", "input"), ("outputs", "output")):
        for value in info.get(key, []):
            parts.append(f"{label} {value['name']}: {value['dtype']}{format_shape(value['shape'])}")
    if "parameters" in info:
        parts.append(f"{info['parameters']:,} parameters")
    if "node_count" in info:
        parts.append(f"{info['node_count']} nodes")
    if info.get("opsets"):
        parts.append(f"opset {info['opsets'].get('', info['opsets'].get('ai.onnx'))}")
    return "; ".join(parts)
