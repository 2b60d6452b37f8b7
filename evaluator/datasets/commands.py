"""``python -m evaluator datasets fetch|import|info``: prepare and inspect the datasets, and
import an instructor's own hidden set (``import --name NAME --task TASK --from PATH``).

Errors (no network, missing or malformed source files, bad checksums) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from evaluator.datasets.downloads import fetch
from evaluator.datasets.errors import DatasetError
from evaluator.datasets.hidden_sets import FORMATS, import_hidden_set
from evaluator.datasets.importer import import_from
from evaluator.datasets.store import (
    default_data_dir,
    hidden_sets,
    prepared_entry,
    resolve_data_dir,
    verify_prepared,
)
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
        help="prepare from a local copy laid out like ../shared/datasets/, or (with --name) "
             "import an instructor's own hidden set",
    )
    imported.add_argument("--from", dest="source", type=Path, required=True, metavar="PATH")
    imported.add_argument(
        "--name", default=None,
        help="import PATH as the hidden set NAME of one --task (a track names it); not public "
             "unless --public")
    imported.add_argument("--labels", type=Path, default=None,
                          help="with --name and an IDX image file: its IDX labels file")
    imported.add_argument("--format", dest="fmt", choices=FORMATS, default="auto",
                          help="with --name: folder, idx, cifar or text (default: from PATH)")
    imported.add_argument("--public", action="store_true",
                          help="with --name: the set's labels are public (the leaderboard says so)")
    info = commands.add_parser("info", parents=[data_dir], help="show what is prepared")
    info.add_argument(
        "--verify", action="store_true", help="recompute every prepared file's SHA-256"
    )
    return parser


def _print_prepared(console: Console, results: dict, data_dir: Path) -> None:
    for task, result in results.items():
        console.print(
            f"{task}: {result['train']:,} training and {result['test']:,} hidden "
            f"({result['public']:,} public / {result['private']:,} private) "
            f"{'characters' if TASKS[task].is_language_model else 'images'}, "
            f"sha256 {result['sha256']}, {result['seconds']:.1f} s",
            soft_wrap=True,
        )
    console.print(f"prepared in {data_dir}", soft_wrap=True)


def _verified(name: str, data_dir: Path) -> bool:
    try:
        verify_prepared(name, data_dir)
    except DatasetError:
        return False
    return True


def _info_table(data_dir: Path, verify: bool = False) -> tuple[Table, list[str], bool]:
    """The table of tasks, the lines to print under it (full hashes, what to run), and whether
    every verified task still matches its manifest."""
    table = Table(title="Prepared datasets", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("task", "prepared", "train", "hidden", "public / private", "sha256"):
        table.add_column(column, no_wrap=True)
    notes, intact = [], True
    where = "" if data_dir == default_data_dir() else f" --data-dir {data_dir}"
    for name in TASKS:
        try:
            entry = prepared_entry(name, data_dir)
        except DatasetError:
            table.add_row(name, "no", "-", "-", "-", "-")
            notes.append(f"{name}: not prepared; run `python -m evaluator datasets fetch --task "
                         f"{name}{where}` or `... import --from DIR --task {name}{where}`")
            continue
        state = "yes"
        if verify:
            ok = _verified(name, data_dir)
            intact &= ok
            state = "verified" if ok else "CHANGED"
        counts = entry["counts"]
        table.add_row(
            name, state, f"{counts['train']:,}", f"{counts['test']:,}",
            f"{counts['public']:,} / {counts['private']:,}", entry["sha256"][:12],
        )
        notes.append(f"{name}: {data_dir / name}  sha256 {entry['sha256']}")
    for name, entry in sorted(hidden_sets(data_dir).items()):
        counts = entry["counts"]
        state = "yes"
        if verify:
            ok = _verified(name, data_dir)
            intact &= ok
            state = "verified" if ok else "CHANGED"
        table.add_row(
            f"{name} ({entry['task']}, {'public' if entry.get('public') else 'hidden'})", state,
            "-", f"{counts['test']:,}", f"{counts['public']:,} / {counts['private']:,}",
            entry["sha256"][:12],
        )
        notes.append(f"{name}: {data_dir / name}  sha256 {entry['sha256']}")
    notes.append("counts are images, and characters for tinygpt")
    if not intact:
        notes.append("a prepared file no longer matches its SHA-256 in the manifest: prepare the "
                     "CHANGED task again")
    return table, notes, intact


def run(args: argparse.Namespace, console: Console) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    if args.command == "info":
        table, notes, intact = _info_table(data_dir, args.verify)
        console.print(f"data directory: {data_dir}", soft_wrap=True)
        console.print(table)
        for note in notes:
            console.print(note, soft_wrap=True)
        return 0 if intact else USAGE_ERROR
    if args.command == "import" and args.name is not None:
        return _import_hidden_set(args, console, data_dir)
    if args.command == "fetch":
        results = fetch(data_dir, args.tasks)
    else:
        results = import_from(args.source, data_dir, args.tasks)
    _print_prepared(console, results, data_dir)
    skipped = [task for task in TASKS if task not in results and args.tasks is None]
    if skipped:
        console.print(
            f"not found in {args.source}, so not imported: {', '.join(skipped)}", soft_wrap=True
        )
    return 0


def _import_hidden_set(args: argparse.Namespace, console: Console, data_dir: Path) -> int:
    if not args.tasks or len(args.tasks) != 1:
        print("error: --name imports one hidden set: give its task with one --task",
              file=sys.stderr)
        return USAGE_ERROR
    result = import_hidden_set(args.name, args.tasks[0], args.source, data_dir,
                               labels=args.labels, fmt=args.fmt, public=args.public)
    counts = result["counts"]
    unit = "characters" if TASKS[result["task"]].is_language_model else "images"
    console.print(
        f"{result['name']} ({result['task']}, {result['format']}): {counts['test']:,} {unit} "
        f"({counts['public']:,} public / {counts['private']:,} private half), "
        f"{'PUBLIC labels' if result['public'] else 'hidden (not public)'}, "
        f"sha256 {result['sha256']}, {result['seconds']:.1f} s", soft_wrap=True)
    console.print(f"prepared in {data_dir}; import it the same way on every scoring worker and "
                  f"set the track's hidden set to {result['name']!r}", soft_wrap=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``datasets`` subcommand; the exit status (0 done, 2 a dataset or usage error)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has already printed the usage error (or the help)
        return int(exit_.code or 0)
    console = Console()
    if not console.is_terminal:  # a pipe or a log: room for the table instead of 80 columns
        console = Console(width=120)
    try:
        return run(args, console)
    except (DatasetError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
