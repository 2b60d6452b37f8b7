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


MAX_PROBLEMS_PER_RULE = 10
_MAX_TEXT = {"message": 1000, "where": 300, "fix": 600}


def tidy(problems: list[Problem]) -> list[Problem]:
    """Bound what a hostile model can put in a report: names are the model's own strings.

    Control characters become ``?``, long texts are clipped, and each rule keeps at most
    ``MAX_PROBLEMS_PER_RULE`` problems plus one line counting the rest.
    """
    kept: list[Problem] = []
    counts: dict[str, int] = {}
    for problem in problems:
        counts[problem.rule] = counts.get(problem.rule, 0) + 1
        if counts[problem.rule] <= MAX_PROBLEMS_PER_RULE:
            kept.append(Problem(**{k: _clip(v, _MAX_TEXT.get(k)) for k, v in asdict(problem).items()}))
    for rule, count in counts.items():
        if count > MAX_PROBLEMS_PER_RULE:
            kept.append(Problem(rule, f"... and {count - MAX_PROBLEMS_PER_RULE} more problems of "
                                "this kind", None, None))
    return kept


def clip_name(name: str) -> str:
    """A model-chosen name, made safe to show (printable, at most 200 characters)."""
    return _clip(name, 200)


def _clip(text: str | None, limit: int | None) -> str | None:
    if text is None or limit is None:
        return text
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
