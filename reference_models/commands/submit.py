"""``arena submit MODEL --competition SLUG --track TASK``: upload with a progress bar, follow the
status (received → validating → queued → scoring → ...) until scored, then print the scores and
ranks (or the reason the model was refused). ``--no-wait`` still waits for the file's check (seconds,
on the platform's validation workers) so that a refused file is said at once."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default=None,
                        help="platform URL (default: $ARENA_SERVER, the config file, or "
                        "http://127.0.0.1:8000)")
    parser.add_argument("--token", default=None,
                        help="API token (default: $ARENA_TOKEN or the config file)")


def add_command(commands) -> None:
    parser = commands.add_parser(
        "submit", help="upload a model to a competition and wait for its scores",
        description="Upload MODEL to a competition's track, follow it until it is scored, then "
        "print its scores and its rank in each leaderboard category. The server and token come "
        "from --server/--token, ARENA_SERVER/ARENA_TOKEN, or ~/.config/arena/config.json.",
    )
    parser.add_argument("model", type=Path, metavar="MODEL", help="the .onnx file")
    parser.add_argument("--competition", required=True, metavar="SLUG")
    parser.add_argument("--track", required=True, metavar="TRACK",
                        help="the track's slug (usually the task: mnist, cifar10, tinygpt)")
    add_connection_options(parser)
    parser.add_argument("--no-wait", action="store_true",
                        help="upload, wait for the file's check, print the id and stop")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds to wait for the scores (default 1800)")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between status checks")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from reference_models.client import (
        CHECKED_STATUSES,
        ArenaClient,
        ClientError,
        resolve_settings,
    )

    console = Console()
    if not args.model.is_file():
        raise FileNotFoundError(f"no model file at {args.model}")
    try:
        client = ArenaClient(resolve_settings(args.server, args.token))
        submission = _upload(console, client, args)
        if submission.get("duplicate"):
            console.print(f"submission {submission['id']}: the same bytes as your earlier upload; "
                          "it is that submission, and no upload was used")
        console.print(f"submission {submission['id']}: {describe_wait(submission)}")
        if submission["status"] not in CHECKED_STATUSES:
            def checking(status_now: str) -> None:
                if status_now != submission["status"]:
                    console.print(f"submission {submission['id']}: "
                                  f"{describe_wait({'status': status_now})}")

            with console.status("checking the file..."):
                submission = client.wait(submission["id"], poll_seconds=min(args.poll, 1.0),
                                         timeout=args.timeout, on_status=checking,
                                         until=CHECKED_STATUSES)
            if submission["status"] not in ("validating", "received"):
                console.print(f"submission {submission['id']}: {describe_wait(submission)}")
        if args.no_wait or submission["status"] == "rejected":
            return _finish(console, client, args, submission)
        shown = [describe_wait(submission)]

        def update(body: dict) -> None:
            text = describe_wait(body)
            status.update(f"submission {body['id']}: {text}...")
            if body["status"] == "queued" and text != shown[-1]:
                console.print(f"submission {body['id']}: {text}")  # the queue moved: say so
            shown.append(text)

        with console.status("waiting for the scores...") as status:
            submission = client.wait(submission["id"], poll_seconds=args.poll,
                                     timeout=args.timeout, on_update=update)
        return _finish(console, client, args, submission)
    except ClientError as error:
        console.print(f"[bold red]arena submit: {error}[/bold red]")
        return 1


CHECKING = {"received": "received (saved; waiting for its check)",
            "validating": "validating (the platform is checking the file)"}


def describe_wait(submission: dict) -> str:
    """The status in words, with the queue position and the estimated wait while queued."""
    status = submission["status"]
    position = submission.get("queue_position")
    if status in CHECKING:
        return CHECKING[status]
    if status != "queued" or not position:
        return status
    ahead = position - 1
    text = f"queued at position {position} (" + (
        "next to be scored)" if ahead == 0 else f"{ahead} ahead)")
    wait = submission.get("estimated_wait_seconds")
    if wait is not None:
        text += f", about {_duration(wait)} until scored"
    return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(round(seconds), 1)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _upload(console, client, args) -> dict:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    size = args.model.stat().st_size
    with Progress("[bold]uploading", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("upload", total=size)
        return client.upload(args.model, args.competition, args.track,
                             on_progress=lambda sent: progress.advance(task, sent))


def _finish(console, client, args, submission: dict) -> int:
    status = submission["status"]
    if status == "rejected":
        console.print("[bold red]rejected[/bold red]: " + (submission.get("error") or ""))
        return 1
    if status == "failed":
        console.print("[bold red]failed[/bold red] (a platform problem, not your model's; it "
                      "may be retried): " + (submission.get("error") or ""))
        return 1
    if status not in ("scored", "over_limit"):
        return 0  # --no-wait
    _print_scores(console, submission)
    if status == "scored":
        ranks = {category: standing(client.whole_leaderboard(args.competition, args.track,
                                                             category), submission["id"])
                 for category in CATEGORIES}
        console.print("ranks on the public leaderboard: " + ", ".join(
            f"{category} {describe_rank(*place)}" for category, place in ranks.items()))
        if any(rank is None for rank, _, _ in ranks.values()):
            console.print("(-: not ranked there: under the track's accuracy floor, over a limit, "
                          "or not your best submission)")
    return 0


CATEGORIES = ("accuracy", "speed", "size", "efficiency")


def standing(board: dict, submission_id: int) -> tuple[int | None, bool, int]:
    """(rank, tied, ranked participants) of ``submission_id`` on one leaderboard as the API
    returns it (rank None: not ranked there)."""
    rows = board.get("rows") or []
    ranked = [row for row in rows if row.get("rank") is not None and not row.get("is_baseline")]
    mine = next((row for row in ranked if row["submission_id"] == submission_id), None)
    return (mine["rank"] if mine else None, bool(mine and mine.get("tied")), len(ranked))


def describe_rank(rank: int | None, tied: bool, of: int) -> str:
    """"#2 of 14", "#1 (tied) of 3", or "-" when not ranked."""
    if rank is None:
        return "-"
    return f"#{rank}{' (tied)' if tied else ''} of {of}"


def _print_scores(console, submission: dict) -> None:
    scores = submission.get("scores") or {}
    public = (scores.get("splits") or {}).get("public") or {}
    over = " [yellow](over the track's limits: not ranked)[/yellow]" if scores.get(
        "over_limit") else ""
    parts = []
    if public.get("accuracy") is not None:
        parts.append(f"accuracy {public['accuracy']:.2%} (public split)")
    if public.get("bits_per_char") is not None:
        parts.append(f"{public['bits_per_char']:.3f} bits/char")
    if scores.get("latency_ms") is not None:
        parts.append(f"latency {scores['latency_ms']:.3f} ms")
    if scores.get("normalized_latency_ms") is not None:
        # The figure the latency limit is checked on (comparable across workers and hours).
        parts.append(f"normalized latency {scores['normalized_latency_ms']:.3f} ms"
                     + (f" on {scores['hardware_class']}" if scores.get("hardware_class") else ""))
    if scores.get("speed_index") is not None:
        parts.append(f"speed index {scores['speed_index']:.2f}")
    if scores.get("size_bytes") is not None:
        parts.append(f"size {scores['size_bytes']:,} bytes")
    console.print(f"[bold green]{submission['status']}[/bold green]: " + ", ".join(parts) + over)
    for warning in scores.get("warnings") or []:
        console.print(f"[yellow]warning[/yellow]: {warning}")
