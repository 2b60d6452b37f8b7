"""``arena leaderboard SLUG [--track TASK] [--category C]``: a competition's leaderboard as a table."""

from __future__ import annotations

import argparse

from reference_models.commands.submit import add_connection_options

CATEGORIES = ("accuracy", "speed", "size", "efficiency", "pareto")


def add_command(commands) -> None:
    parser = commands.add_parser(
        "leaderboard", help="show a competition's leaderboard",
        description="Print the public leaderboard of a competition's track in one category.",
    )
    parser.add_argument("competition", metavar="SLUG")
    parser.add_argument("--track", default=None, help="track slug (default: the first track)")
    parser.add_argument("--category", default="accuracy", choices=CATEGORIES)
    parser.add_argument("--split", default=None, choices=("public", "private"))
    parser.add_argument("--json", action="store_true",
                        help="print the leaderboard as the API returns it (JSON)")
    add_connection_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from reference_models.client import ArenaClient, ClientError, resolve_settings

    console = Console()
    try:
        client = ArenaClient(resolve_settings(args.server, args.token))
        board = client.leaderboard(args.competition, args.track, args.category, args.split)
    except ClientError as error:
        console.print(f"[bold red]arena leaderboard: {error}[/bold red]")
        return 1
    if args.json:
        print(json.dumps(board, indent=2))
        return 0
    console.print(leaderboard_table(board, console.width))
    return 0


# Columns by how long they stay as the terminal narrows, as the page folds its table: the
# category's own column is never folded. (name, header, justify, cell, priority; lower stays.)
COLUMNS = [
    ("rank", "#", "right", lambda r: _rank(r), 0),
    ("participant", "participant", "left", lambda r: _who(r), 0),
    ("accuracy", "accuracy", "right", lambda r: _pct(r.get("accuracy")), 0),
    ("bits_per_char", "bits/char", "right", lambda r: _num(r.get("bits_per_char"), 3), 2),
    ("latency", "latency", "right", lambda r: _ms(r.get("normalized_latency_ms")
                                                  or r.get("latency_ms")), 1),
    ("size", "size", "right", lambda r: _size(r.get("size_bytes")), 1),
    ("efficiency", "acc/MB", "right", lambda r: _num(r.get("accuracy_per_mb"), 3), 3),
    ("raw", "raw ms", "right", lambda r: _num(r.get("latency_ms"), 3), 4),
    ("submission", "id", "right", lambda r: str(r.get("submission_id", "")), 4),
]
OWN_COLUMN = {"accuracy": "accuracy", "speed": "latency", "size": "size",
              "efficiency": "efficiency", "pareto": "accuracy"}


def columns_for(board: dict, width: int) -> list[tuple]:
    """The columns that fit ``width`` characters, dropping the lowest priority ones first."""
    language = board.get("task") == "tinygpt"
    own = OWN_COLUMN.get(board.get("category"), "accuracy")
    chosen = [c for c in COLUMNS if language or c[0] != "bits_per_char"]
    rows = board.get("rows") or []

    def needed(columns) -> int:  # each column: its widest cell plus rich's borders and padding
        return 1 + sum(3 + max(len(c[1]), *(len(c[3](row)) for row in rows)) for c in columns)

    for priority in (4, 3, 2, 1):
        if needed(chosen) <= width:
            break
        chosen = [c for c in chosen if c[4] < priority or c[0] == own]
    return chosen


def leaderboard_table(board: dict, width: int = 80):
    from rich.table import Table

    table = Table(title=f"{board['competition']} / {board['track']}: {board['category']} "
                        f"({board['split']} split)")
    columns = columns_for(board, width)
    for _, header, justify, _, _ in columns:
        table.add_column(header, justify=justify, no_wrap=True)
    for row in board["rows"]:
        table.add_row(*(cell(row) for _, _, _, cell, _ in columns))
    if not board["rows"]:
        table.caption = "no ranked submissions yet"
    elif len(columns) < len(COLUMNS) - (board.get("task") != "tinygpt"):
        table.caption = "some columns fold to fit the terminal: widen it, or use --json"
    return table


def _rank(row: dict) -> str:
    if row.get("is_baseline"):
        return "-"
    return "-" if row.get("rank") is None else f"{row['rank']}{'=' if row.get('tied') else ''}"


def _who(row: dict) -> str:
    return row["username"] + (" (baseline)" if row.get("is_baseline") else "")


def _pct(value) -> str:
    return "" if value is None else f"{value:.2%}"


def _num(value, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _ms(value) -> str:
    if value is None:
        return ""
    return f"{value * 1000:.3g} µs" if value < 0.01 else f"{value:.3f} ms"


def _size(value) -> str:
    if value is None:
        return ""
    return f"{value / 1000:.1f} kB" if value < 1_000_000 else f"{value / 1_000_000:.2f} MB"
