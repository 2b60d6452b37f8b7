"""``arena final ID [--unmark]``: pick one of your scored submissions as final (the private
leaderboard ranks the best of your final ones per track; with none picked, your best public one),
and ``arena submissions [--competition SLUG] [--track TRACK]``: your submissions, final ones
marked."""

from __future__ import annotations

import argparse

from reference_models.commands.submit import add_connection_options


def add_command(commands) -> None:
    parser = commands.add_parser(
        "final", help="mark one of your submissions final (or --unmark it)",
        description="Mark submission ID final before the deadline: the private leaderboard ranks "
        "the best of your final submissions on each track (with none marked, your best public "
        "one). A track allows a few final picks (usually 2); unmark one to pick another. "
        "`arena submissions` lists your submissions and their ids.",
    )
    parser.add_argument("submission", type=int, metavar="ID", help="the submission's id")
    parser.add_argument("--unmark", action="store_true", help="no longer final")
    add_connection_options(parser)
    parser.set_defaults(handler=run_final)

    listing = commands.add_parser(
        "submissions", help="list your submissions (final ones marked)",
        description="Your submissions, newest first, with their status, public accuracy and "
        "whether they are final.",
    )
    listing.add_argument("--competition", default=None, metavar="SLUG")
    listing.add_argument("--track", default=None, metavar="TRACK")
    listing.add_argument("--json", action="store_true",
                         help="print the submissions as the API returns them (JSON)")
    add_connection_options(listing)
    listing.set_defaults(handler=run_submissions)


def run_final(args: argparse.Namespace) -> int:
    from rich.console import Console

    from reference_models.client import ArenaClient, ClientError, resolve_settings

    console = Console()
    try:
        client = ArenaClient(resolve_settings(args.server, args.token))
        submission = client.set_final(args.submission, final=not args.unmark)
    except ClientError as error:
        console.print(f"[bold red]arena final: {final_error(error, args.submission)}[/bold red]")
        return 1
    where = f"{submission['competition']} / {submission['track']}"
    if submission.get("final"):
        console.print(f"submission {submission['id']} ({where}) is final: the private "
                      "leaderboard ranks the best of your final submissions on this track.")
    else:
        console.print(f"submission {submission['id']} ({where}) is no longer final.")
    return 0


def final_error(error, submission_id: int) -> str:
    """The server's refusal in a student's words (its own reasons already are: the deadline
    passed, the track's limit of N final picks is reached, the submission is not scored)."""
    if error.status == 404:
        return (f"you have no submission {submission_id} (see `arena submissions` for the ids "
                "of yours)")
    text = str(error)
    return text.removesuffix(" (HTTP 400)")


def run_submissions(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from reference_models.client import ArenaClient, ClientError, resolve_settings

    console = Console()
    try:
        client = ArenaClient(resolve_settings(args.server, args.token))
        rows = client.submissions(args.competition, args.track)
    except ClientError as error:
        console.print(f"[bold red]arena submissions: {error}[/bold red]")
        return 1
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    console.print(submissions_table(rows))
    return 0


def submissions_table(rows: list[dict]):
    from rich.table import Table

    table = Table(title="your submissions")
    for header, justify in (("id", "right"), ("competition / track", "left"),
                            ("uploaded", "left"), ("status", "left"), ("accuracy", "right"),
                            ("final", "center"), ("file", "left")):
        table.add_column(header, justify=justify, no_wrap=header != "file")
    for row in rows:
        public = ((row.get("scores") or {}).get("splits") or {}).get("public") or {}
        accuracy = public.get("accuracy")
        status = row["status"] + (" (late)" if row.get("late") else "") + (
            " (hidden)" if row.get("hidden_reason") else "")
        table.add_row(str(row["id"]), f"{row['competition']} / {row['track']}",
                      (row.get("created_at") or "")[:16].replace("T", " "), status,
                      "" if accuracy is None else f"{accuracy:.2%}",
                      "final" if row.get("final") else "", row.get("label") or "")
    if not rows:
        table.caption = "no submissions yet: upload one with `arena submit`"
    else:
        table.caption = "mark one final with `arena final ID` (unmark: --unmark)"
    return table
