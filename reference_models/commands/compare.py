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

    from reference_models.compress.report import comparison_table, draw_chart, score_models

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
