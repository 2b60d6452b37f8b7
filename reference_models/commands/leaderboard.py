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
    add_connection_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from reference_models.client import ArenaClient, ClientError, resolve_settings

    console = Console()
    try:
        client = ArenaClient(resolve_settings(args.server, args.token))
        board = client.leaderboard(args.competition, args.track, args.category, args.split)
    except ClientError as error:
        console.print(f"[bold red]arena leaderboard: {error}[/bold red]")
        return 1
    console.print(leaderboard_table(board))
    return 0


def leaderboard_table(board: dict):
    from rich.table import Table

    language = board.get("task") == "tinygpt"
    table = Table(title=f"{board['competition']} / {board['track']}: {board['category']} "
                        f"({board['split']} split)")
    columns = ["rank", "participant", "accuracy", *(["bits/char"] if language else []),
               "latency ms", "size bytes", "acc per MB", "submission"]
    for column in columns:
        table.add_column(column, justify="left" if column == "participant" else "right")
    for row in board["rows"]:
        who = row["username"] + (" (baseline)" if row.get("is_baseline") else "")
        rank = "-" if row.get("rank") is None else str(row["rank"])
        cells = [rank, who, _pct(row.get("accuracy"))]
        if language:
            cells.append(_num(row.get("bits_per_char"), 3))
        cells += [_num(row.get("latency_ms"), 3), _int(row.get("size_bytes")),
                  _num(row.get("accuracy_per_mb"), 3), str(row.get("submission_id", ""))]
        table.add_row(*cells)
    if not board["rows"]:
        table.caption = "no ranked submissions yet"
    return table


def _pct(value) -> str:
    return "" if value is None else f"{value:.2%}"


def _num(value, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _int(value) -> str:
    return "" if value is None else f"{value:,}"
