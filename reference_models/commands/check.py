"""``arena check MODEL --task TASK``: validate and score a model locally, like the server does, on a
validation slice of the public training data (never the hidden test set)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_command(commands) -> None:
    from evaluator.tasks import TASKS

    parser = commands.add_parser(
        "check", help="validate and score a model locally on a validation slice",
        description="Validate MODEL for TASK with the server's validation gate, then score it "
        "with the server's sandbox and latency protocol on a validation slice of the public "
        "training data (the hidden test set is never used).",
    )
    parser.add_argument("model", type=Path, metavar="MODEL", help="the .onnx file")
    parser.add_argument("--task", required=True, choices=sorted(TASKS))
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="prepared datasets (default: $ARENA_DATA_DIR)")
    parser.add_argument("--quick", action="store_true",
                        help="a few latency runs only (fast, noisy)")
    parser.add_argument("--json", action="store_true", help="print the whole scorecard as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from reference_models.local_scoring import check_model

    if not args.model.is_file():
        raise FileNotFoundError(f"no model file at {args.model}")
    console = Console()
    with console.status(f"scoring {args.model.name} on the {args.task} validation slice..."):
        card = check_model(args.model, args.task, data_dir=args.data_dir, quick=args.quick)
    if args.json:
        print(json.dumps(card, indent=2, default=str))
        return 0 if card["valid"] else 1
    if not card["valid"]:
        console.print(f"[bold red]refused ({card['failure_kind']})[/bold red]\n{card['error']}")
        return 1
    print_scorecard(console, args.model.name, card)
    return 0


def print_scorecard(console, name: str, card: dict, where: str = "validation slice") -> None:
    """The scorecard as a two-column table (``arena check``, ``arena train --score``)."""
    from rich.table import Table

    if not card.get("valid", True):
        console.print(f"[bold red]{name}: refused ({card.get('failure_kind')})[/bold red]\n"
                      f"{card.get('error') or ''}")
        return
    table = Table(title=f"{name}: {card['task']} {where}", show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    rows = [("accuracy", f"{card['accuracy']:.2%}")]
    if card.get("bits_per_char") is not None:
        rows.append(("bits per character", f"{card['bits_per_char']:.3f}"))
    rows += [(label, text) for label, text in (
        ("latency (batch 1, median)", _fmt(card.get("latency_ms"), "{:.3f} ms")),
        ("latency p90", _fmt(card.get("latency_p90_ms"), "{:.3f} ms")),
        ("speed index", _fmt(card.get("speed_index"), "{:.2f}")),
        ("size (deflate)", _fmt(card.get("size_bytes"), "{:,} bytes")),
        ("raw size", _fmt(card.get("raw_bytes"), "{:,} bytes")),
        ("parameters (non-zero)", f"{_fmt(card.get('params'), '{:,}')} "
                                  f"({_fmt(card.get('nonzero_params'), '{:,}')})"),
        ("peak memory", _fmt(card.get("peak_memory_mb"), "{:.1f} MB")),
    )]
    hidden_set = card.get("hidden_set") or {}
    if hidden_set.get("name"):  # which data it was: only ever data present on this machine
        rows.append(("scored on", f"{hidden_set['name']} "
                                  f"({'public' if hidden_set.get('public') else 'not public'})"))
    if card.get("latency_noisy"):
        rows.append(("note", "latency was noisy (a busy machine)"))
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)


def _fmt(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)
