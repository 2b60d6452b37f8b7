"""``python -m evaluator``: validate or score a model locally, and manage the datasets.

Fixed interface (other tools depend on it)::

    python -m evaluator validate MODEL --task TASK [--json]
    python -m evaluator score MODEL --task TASK [--split public|private|all] [--data-dir DIR]
                                   [--hidden-set NAME] [--json] [--quick] [--timeout S]
                                   [--memory-mb MB] [--latency-limit-ms MS]
    python -m evaluator calibrate [--task TASK ...] [--quick] [--json]
    python -m evaluator datasets fetch|import --from DIR|info [--data-dir DIR]

On a hidden set that is not public (an instructor's own, ``datasets import --name``), ``score``
prints no figure of its private half: neither the private split's accuracy nor anything pooled
with it (the default split is then ``public``).

Exit status: 0 valid / scored; 2 the model was rejected or failed in the sandbox (or a usage
error); 1 an internal error of the evaluator (datasets not prepared, scoring process not started).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from evaluator.tasks import TASKS

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_REJECTED = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evaluator",
        description="Validate and score ONNX models for the competition tasks.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("model", type=Path, help="the .onnx file")
    common.add_argument("--task", required=True, choices=sorted(TASKS))
    common.add_argument("--json", action="store_true", help="print one JSON object")
    commands.add_parser("validate", parents=[common], help="check a model without running it")
    scored = commands.add_parser("score", parents=[common], help="score a model on the hidden set")
    scored.add_argument("--split", choices=("public", "private", "all"), default=None,
                        help="which half the top-line accuracy is of (default: all; only public "
                             "on a set that is not public)")
    scored.add_argument("--hidden-set", default=None, metavar="NAME",
                        help="score on this imported hidden set of the task (it must be prepared "
                             "here; default: the task's standard set)")
    scored.add_argument("--data-dir", type=Path, default=None,
                        help="prepared datasets (default: $ARENA_DATA_DIR or ~/.cache/model-arena/data)")
    scored.add_argument("--quick", action="store_true",
                        help="a few latency runs only (fast, noisy: not for comparisons)")
    scored.add_argument("--timeout", type=float, default=None, help="wall-clock limit in seconds")
    scored.add_argument("--memory-mb", type=int, default=None, help="address-space limit in MB")
    scored.add_argument("--latency-limit-ms", type=float, default=None,
                        help="the track's latency limit (default 100 ms): a first batch-1 "
                             "inference 20x over it (at least 5 s) ends the scoring as too slow")
    calibrate = commands.add_parser(
        "calibrate", help="time each task's reference model on this machine (its hardware class)")
    calibrate.add_argument("--task", action="append", choices=sorted(TASKS), default=None,
                           help="a task to calibrate (repeatable; default: every task)")
    calibrate.add_argument("--quick", action="store_true", help="a few runs only (noisy)")
    calibrate.add_argument("--json", action="store_true", help="print one JSON object")
    commands.add_parser("datasets", add_help=False, help="fetch, import or inspect the datasets")
    return parser


def _validate(args: argparse.Namespace, console: Console) -> int:
    from evaluator.validation import validate

    report = validate(args.model, args.task)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        console.print(report.summary(), highlight=False, markup=False)
    return EXIT_OK if report.ok else EXIT_REJECTED


def _number(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def _interval(values) -> str:
    if not values:
        return ""
    return f" [{_number(values[0])}, {_number(values[1])}]"


def _score_table(card: dict) -> Table:
    language = card["bits_per_char"] is not None
    table = Table(title=f"{card['task']} scorecard (split: {card['split']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("accuracy", _number(card["accuracy"])),
        *([("bits per char", _number(card["bits_per_char"]))] if language else []),
        ("latency median (ms) [95% CI]", _number(card["latency_ms"]) + _interval(
            card.get("latency_ci_ms"))),
        ("latency p90 / mean (ms)",
         f"{_number(card['latency_p90_ms'])} / {_number(card['latency_mean_ms'])}"),
        ("reference latency (ms)", _number(card["reference_latency_ms"])),
        ("speed index [95% CI]", _number(card["speed_index"]) + _interval(
            card.get("speed_index_ci"))),
        ("size (deflate bytes)", _number(card["size_bytes"])),
        ("raw bytes", _number(card["raw_bytes"])),
        ("parameters (non-zero)", f"{_number(card['params'])} ({_number(card['nonzero_params'])})"),
        ("peak memory (MB)", _number(card["peak_memory_mb"])),
        ("throughput (samples/s)", _number(card["throughput"])),
    ]
    numerics = card.get("numerics")
    if numerics:
        rows.append(("numerics (max logit diff, agreement)",
                     f"{_number(numerics['max_abs_diff'], 3)} (tolerance "
                     f"{_number(numerics['tolerance'], 3)}), {numerics['class_agreement']:.0%} "
                     f"{'ok' if numerics['ok'] else 'DIFFERS'}"))
    provenance = card.get("provenance") or {}
    if provenance.get("hardware_class"):
        rows.append(("hardware class", f"{provenance['hardware_class']} "
                                       f"({provenance.get('cpu_count')} cores)"))
    hidden_set = card.get("hidden_set") or {}
    if hidden_set:
        kind = "public labels" if hidden_set.get("public") else "not public"
        rows.append(("hidden set", f"{hidden_set['name']} ({kind}), sha256 "
                                   f"{hidden_set['sha256'][:12]}"))
    gap = card.get("train_gap") or {}
    if gap.get("measured"):
        rows.append((f"train gap (loss, {gap['loss_unit']})",
                     f"{_number(gap['figures']['train']['loss'])} on training data, relative gap "
                     f"{gap['relative_loss_gap']:+.3f}{' FLAGGED' if gap['flagged'] else ''}"))
    for half in ("public", "private"):
        if half not in card["splits"]:  # withheld: the set is not public
            continue
        values = card["splits"][half]
        text = f"{_number(values['accuracy'])} on {_number(values['count'])}"
        if language:
            text += f", {_number(values['bits_per_char'])} bits/char"
        rows.append((f"{half} half accuracy", text))
    for name, value in rows:
        table.add_row(name, value)
    return table


def withhold_private(card: dict) -> dict:
    """The scorecard as a student's tools may print it for a set that is not public: the private
    half and everything pooled with it removed (a copy; a public set's card is returned as is)."""
    if (card.get("hidden_set") or {}).get("public", True):
        return card
    card = json.loads(json.dumps(card))
    card["splits"].pop("private", None)
    public = card["splits"].get("public") or {}
    card.update(split="public", accuracy=public.get("accuracy"))
    if card.get("bits_per_char") is not None:
        card["bits_per_char"] = public.get("bits_per_char")
    gap = card.get("train_gap") or {}
    if gap.get("measured"):
        figures = gap["figures"]
        figures.pop("private", None)
        figures.pop("hidden", None)
        for key in ("loss_gap", "relative_loss_gap", "accuracy_gap", "reason"):
            gap.pop(key, None)
        gap["measured"] = False
        gap["withheld"] = "the set is not public: only its public half is shown"
    return card


def _local_hidden_set(args: argparse.Namespace) -> tuple[bool | None, str | None]:
    """Whether the set to score on is public (None: not prepared here, the scorer says so), and
    an error for a split that would show its private half."""
    from evaluator.datasets import DatasetError, hidden_set_entry

    try:
        public = bool(hidden_set_entry(args.hidden_set or args.task, args.data_dir,
                                       args.task).get("public"))
    except (DatasetError, ValueError):
        return None, None
    if not public and args.split in ("private", "all"):
        return public, (f"the hidden set {args.hidden_set!r} is not public: its private half is "
                        "never shown; score with --split public")
    return public, None


def _score(args: argparse.Namespace, console: Console) -> int:
    from evaluator.scoring import LatencyProtocol, ScoringError, score

    try:
        model = args.model.read_bytes()
    except OSError as error:
        print(f"error: could not read {args.model}: {error.strerror}", file=sys.stderr)
        return EXIT_REJECTED
    public, refusal = _local_hidden_set(args)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return EXIT_REJECTED
    args.split = args.split or ("public" if public is False else "all")
    protocol = LatencyProtocol.quick() if args.quick else LatencyProtocol.standard()
    try:
        card = score(model, args.task, split=args.split, data_dir=args.data_dir, protocol=protocol,
                     timeout_s=args.timeout, memory_limit_mb=args.memory_mb,
                     latency_limit_ms=args.latency_limit_ms, hidden_set=args.hidden_set)
    except ScoringError as error:
        if args.json:
            print(json.dumps({"task": args.task, "split": args.split, "valid": None,
                              "error": str(error), "internal_error": True}))
        print(f"internal error (not your model's fault): {error}", file=sys.stderr)
        return EXIT_INTERNAL
    card = withhold_private(card)
    if args.json:
        print(json.dumps(card))
    elif card["valid"]:
        console.print(_score_table(card))
        if card["latency_noisy"]:
            console.print("note: latency was noisy (mean/median above 1.1): the machine is busy")
    else:
        console.print(f"FAILED ({card['failure_kind']}): {card['error']}", highlight=False,
                      markup=False)
    if not args.json:  # shown whether or not the model was ranked
        for warning in card.get("warnings") or []:
            console.print(f"warning: {warning}", highlight=False, markup=False)
    return EXIT_OK if card["valid"] else EXIT_REJECTED


def _calibrate(args: argparse.Namespace, console: Console) -> int:
    from evaluator.calibration import calibrate_reference
    from evaluator.scoring import LatencyProtocol, ScoringError

    protocol = LatencyProtocol.quick() if args.quick else LatencyProtocol.standard()
    results = []
    try:
        for task in args.task or sorted(TASKS):
            results.append(calibrate_reference(task, protocol))
    except ScoringError as error:
        print(f"internal error: {error}", file=sys.stderr)
        return EXIT_INTERNAL
    if args.json:
        print(json.dumps({"calibrations": results}))
        return EXIT_OK
    table = Table(title=f"reference latency on {results[0]['hardware_class']}")
    for column in ("task", "reference latency (ms)", "95% CI (ms)"):
        table.add_column(column)
    for row in results:
        table.add_row(row["task"], _number(row["reference_latency_ms"]),
                      _interval(row["reference_latency_ci_ms"]).strip())
    console.print(table)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["datasets"]:
        from evaluator.datasets.commands import main as datasets_main

        return datasets_main(argv[1:])
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    console = Console()
    if args.command == "calibrate":
        return _calibrate(args, console)
    try:
        return _validate(args, console) if args.command == "validate" else _score(args, console)
    except Exception as error:  # an evaluator bug: say so, exit 1, keep the traceback short
        message = f"{type(error).__name__}: {error}"
        if args.json:
            print(json.dumps({"task": args.task, "valid": None, "error": message,
                              "internal_error": True}))
        print(f"internal error: {message}", file=sys.stderr)
        return EXIT_INTERNAL
