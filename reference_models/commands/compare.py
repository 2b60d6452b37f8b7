"""``arena compare MODEL...``: score several models locally and show them side by side."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_command(commands) -> None:
    from evaluator.tasks import TASKS

    parser = commands.add_parser(
        "compare", help="compare models: accuracy, latency, size side by side, plus a chart",
        description="Score every MODEL with the evaluator locally (validation slice of the "
        "public training data, the server's protocol), print a table with ratios against the "
        "first model and draw accuracy against latency (marker area: size) as a PNG.",
    )
    parser.add_argument("models", type=Path, nargs="+", metavar="MODEL")
    parser.add_argument("--task", default=None, choices=sorted(TASKS),
                        help="default: guessed from each model's input")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="prepared datasets (default: $ARENA_DATA_DIR)")
    parser.add_argument("--chart", type=Path, default=Path("comparison.png"),
                        help="where to write the chart (default: ./comparison.png)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    parser.add_argument("--quick", action="store_true", help="a few latency runs only")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from reference_models.compress.report import comparison_table, score_models

    for model in args.models:
        if not model.is_file():
            raise FileNotFoundError(f"no model file at {model}")
    console = Console()
    with console.status(f"scoring {len(args.models)} models, one after another..."):
        rows = score_models(args.models, args.task, data_dir=args.data_dir, quick=args.quick)
    console.print(comparison_table(rows))
    if any(row.valid for row in rows):
        console.print(f"chart: {draw_chart(rows, args.chart)}")
    if args.json is not None:
        args.json.write_text(json.dumps([row.as_dict() for row in rows], indent=2) + "\n")
    return 0 if all(row.valid for row in rows) else 1


def latency_text(value: float, _position=None) -> str:
    """A latency tick in plain numbers ("0.7 ms", "20 ms", "50 µs"): never "7×10⁻¹"."""
    if value <= 0:
        return ""
    if value < 0.01:
        return f"{value * 1000:g} µs"
    return f"{value:g} ms"


def draw_chart(rows, path, title: str = ""):
    """Accuracy (y, fitted to the models) against batch-1 latency (x, log scale with plain
    labels at 1, 2 and 5 of each decade); marker area proportional to size; a legend names
    each model and the size key. Written as a PNG; returns its path."""
    import math
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    valid = [r for r in rows if r.valid]
    if not valid:
        raise ValueError("no valid model to draw")
    largest = max(r.size_bytes for r in valid) or 1
    fig, ax = plt.subplots(figsize=(9, 6), dpi=120)
    for row in valid:
        area = 80 + 1600 * row.size_bytes / largest
        ax.scatter(row.latency_ms, row.accuracy * 100, s=area, alpha=0.6, edgecolors="black",
                   label=f"{row.name} ({row.size_bytes / 1e6:.2f} MB)")
        ax.annotate(row.name, (row.latency_ms, row.accuracy * 100), textcoords="offset points",
                    xytext=(9, 7), fontsize=10)
    ax.set_xscale("log")
    low = min(r.latency_ms for r in valid)
    high = max(r.latency_ms for r in valid)
    ax.set_xlim(10 ** math.floor(math.log10(low) - 0.05), 10 ** math.ceil(math.log10(high) + 0.05))
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(latency_text))
    ax.xaxis.set_minor_formatter(NullFormatter())
    accuracies = [r.accuracy * 100 for r in valid]
    bottom = max(0.0, math.floor(min(accuracies) / 5) * 5 - 5)
    top = min(100.0, math.ceil(max(accuracies) / 5) * 5 + 5)
    ax.set_ylim(bottom, top)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}%"))
    ax.tick_params(labelsize=11)
    ax.set_xlabel("latency at batch 1 (log scale; left is faster)", fontsize=12)
    ax.set_ylabel("accuracy (up is better)", fontsize=12)
    ax.set_title(title or "Accuracy against latency (marker area: deflated size)", fontsize=13)
    ax.grid(True, which="major", alpha=0.35)
    legend = ax.legend(loc="best", fontsize=9, markerscale=0.4, title="model (size)",
                       framealpha=0.9)
    legend.get_title().set_fontsize(10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
