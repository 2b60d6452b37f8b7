"""Compare ONNX models side by side: accuracy, latency, speed index, size and parameters, each
measured by the evaluator locally (the same validation gate, sandbox and latency protocol as the
server), printed as a table and drawn as a chart of accuracy against latency (marker area by size).

By default models are scored on the task's validation slice of the public training data
(``reference_models.local_scoring``); ``hidden=True`` uses the prepared hidden test set instead, as
the baselines' records do.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

MB = 1_000_000


@dataclass
class ModelScore:
    name: str
    valid: bool
    accuracy: float | None = None
    latency_ms: float | None = None
    speed_index: float | None = None
    size_bytes: int | None = None
    raw_bytes: int | None = None
    params: int | None = None
    nonzero_params: int | None = None
    error: str | None = None

    @classmethod
    def from_scorecard(cls, name: str, card: dict) -> ModelScore:
        fields = ("accuracy", "latency_ms", "speed_index", "size_bytes", "raw_bytes", "params",
                  "nonzero_params", "error")
        return cls(name=name, valid=bool(card["valid"]), **{k: card.get(k) for k in fields})

    def as_dict(self) -> dict:
        return asdict(self)


def guess_task(model: str | os.PathLike) -> str:
    """The task whose input signature the model's input has."""
    import onnx

    from evaluator.tasks import TASKS

    graph = onnx.load(str(model), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ValueError(f"{model} has {len(inputs)} inputs; pass --task")
    tensor = inputs[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    for task in TASKS.values():
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        fixed = [d for d in task.input_shape[1:]]
        if dtype == task.input_dtype and len(dims) == len(task.input_shape) and all(
                want is None or want == got for want, got in zip(fixed, dims[1:], strict=True)):
            return task.name
    raise ValueError(f"cannot tell the task of {model} from its input; pass --task")


def score_models(models: list[str | os.PathLike], task: str | None = None, *,
                 data_dir: str | os.PathLike | None = None, quick: bool = False,
                 hidden: bool = False) -> list[ModelScore]:
    """Score every model with the evaluator (one after another, so timings do not overlap)."""
    from evaluator.scoring import LatencyProtocol, score
    from reference_models.local_scoring import check_model

    rows = []
    for model in models:
        model_task = task or guess_task(model)
        if hidden:
            protocol = LatencyProtocol.quick() if quick else LatencyProtocol.standard()
            card = score(model, model_task, data_dir=data_dir, protocol=protocol)
        else:
            card = check_model(model, model_task, data_dir=data_dir, quick=quick)
        rows.append(ModelScore.from_scorecard(Path(model).name, card))
    return rows


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or reference is None or value == 0:
        return ""
    return f" ({reference / value:.1f}x)" if reference >= value else f" ({value / reference:.1f}x!)"


def comparison_table(rows: list[ModelScore]):
    """A rich Table; ratios in brackets compare each model with the first row (smaller/faster
    by that factor; a ``!`` marks larger or slower)."""
    from rich.table import Table

    table = Table(title="Model comparison (evaluator, local)")
    for column in ("model", "accuracy", "latency ms", "speed index", "size (deflate)", "raw bytes",
                   "params", "non-zero"):
        table.add_column(column, justify="left" if column == "model" else "right")
    first = rows[0] if rows else None
    for row in rows:
        if not row.valid:
            table.add_row(row.name, "[red]invalid[/red]", (row.error or "")[:60], "", "", "", "", "")
            continue
        delta = "" if row is first or first.accuracy is None else (
            f" ({(row.accuracy - first.accuracy) * 100:+.2f})")
        table.add_row(
            row.name, f"{row.accuracy:.2%}{delta}",
            f"{row.latency_ms:.3f}{_ratio(row.latency_ms, first.latency_ms)}",
            f"{row.speed_index:.2f}",
            f"{row.size_bytes / MB:.3f} MB{_ratio(row.size_bytes, first.size_bytes)}",
            f"{row.raw_bytes:,}", f"{row.params:,}", f"{row.nonzero_params:,}",
        )
    return table


def draw_chart(rows: list[ModelScore], path: str | os.PathLike, title: str = "") -> Path:
    """Accuracy (y) against batch-1 latency (x, log scale); marker area proportional to size."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    valid = [r for r in rows if r.valid]
    if not valid:
        raise ValueError("no valid model to draw")
    largest = max(r.size_bytes for r in valid)
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    for row in valid:
        area = 60 + 1400 * row.size_bytes / largest
        ax.scatter(row.latency_ms, row.accuracy * 100, s=area, alpha=0.55, edgecolors="black")
        ax.annotate(f"{row.name}\n{row.size_bytes / MB:.2f} MB", (row.latency_ms,
                    row.accuracy * 100), textcoords="offset points", xytext=(8, 6), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("latency at batch 1, ms (log scale; lower is better)")
    ax.set_ylabel("accuracy, %")
    ax.set_title(title or "Accuracy against latency (marker area: deflated size)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = ["ModelScore", "comparison_table", "draw_chart", "guess_task", "score_models"]
