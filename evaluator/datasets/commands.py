"""``python -m evaluator datasets fetch|import|info``: prepare and inspect the datasets.

Errors (no network, missing or malformed source files, bad checksums) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from evaluator.datasets.downloads import fetch
from evaluator.datasets.errors import DatasetError
from evaluator.datasets.importer import import_from
from evaluator.datasets.store import default_data_dir, prepared_entry, resolve_data_dir
from evaluator.tasks import TASKS

USAGE_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evaluator datasets",
        description="Download, import and inspect the datasets of the built-in tasks.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    data_dir = argparse.ArgumentParser(add_help=False)
    data_dir.add_argument(
        "--data-dir", type=Path, default=None,
        help="where prepared arrays live (default: $ARENA_DATA_DIR or ~/.cache/model-arena/data)",
    )
    task = argparse.ArgumentParser(add_help=False)
    task.add_argument(
        "--task", action="append", choices=sorted(TASKS), dest="tasks",
        help="only this task (repeat for several; default: all)",
    )
    commands.add_parser(
        "fetch", parents=[data_dir, task], help="download the official files and prepare them"
    )
    imported = commands.add_parser(
        "import", parents=[data_dir, task],
        help="prepare from a local copy laid out like ../shared/datasets/",
    )
    imported.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR")
    commands.add_parser("info", parents=[data_dir], help="show what is prepared")
    return parser


def _print_prepared(console: Console, results: dict, data_dir: Path) -> None:
    for task, result in results.items():
        console.print(
            f"{task}: {result['train']:,} training and {result['test']:,} hidden "
            f"({result['public']:,} public / {result['private']:,} private) "
            f"{'characters' if TASKS[task].is_language_model else 'images'}, "
            f"sha256 {result['sha256']}, {result['seconds']:.1f} s"
        )
    console.print(f"prepared in {data_dir}")


def _info_table(data_dir: Path) -> tuple[Table, list[str]]:
    """The table of tasks, and the lines to print under it (full hashes, what to run)."""
    table = Table(title=f"Datasets in {data_dir}")
    for column in ("task", "prepared", "train", "hidden", "public / private", "sha256"):
        table.add_column(column, no_wrap=True)
    notes = []
    where = "" if data_dir == default_data_dir() else f" --data-dir {data_dir}"
    for name, task in TASKS.items():
        try:
            entry = prepared_entry(name, data_dir)
        except DatasetError:
            table.add_row(name, "no", "-", "-", "-", "-")
            notes.append(f"{name}: not prepared; run `python -m evaluator datasets fetch --task "
                         f"{name}{where}` or `... import --from DIR --task {name}{where}`")
            continue
        counts = entry["counts"]
        unit = " chars" if task.is_language_model else ""
        table.add_row(
            name, "yes", f"{counts['train']:,}{unit}", f"{counts['test']:,}{unit}",
            f"{counts['public']:,} / {counts['private']:,}", entry["sha256"][:12],
        )
        notes.append(f"{name}: {data_dir / name}  sha256 {entry['sha256']}")
    return table, notes


def run(args: argparse.Namespace, console: Console) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    if args.command == "info":
        table, notes = _info_table(data_dir)
        console.print(table)
        for note in notes:
            console.print(note, soft_wrap=True)
        return 0
    if args.command == "fetch":
        results = fetch(data_dir, args.tasks)
    else:
        results = import_from(args.source, data_dir, args.tasks)
    _print_prepared(console, results, data_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``datasets`` subcommand; the exit status (0 done, 2 a dataset or usage error)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has already printed the usage error (or the help)
        return int(exit_.code or 0)
    console = Console()
    try:
        return run(args, console)
    except (DatasetError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
