"""The student command line, ``arena`` (or ``python -m reference_models``).

    arena train cifar10-cnn --data-dir /tmp/arena-data --epochs 4 --out runs

Each subcommand is one ``add_<name>_command`` function that registers its parser and handler, so a
new subcommand is a new function and one line in ``build_parser``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

# Environment variables that change what a run does or how fast it goes; recorded with the command.
RECORDED_ENVIRONMENT = ("ARENA_DATA_DIR", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: the process arguments); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from evaluator.datasets import DatasetError

    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError, DatasetError) as error:
        print(f"arena {args.command}: error: {error}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arena",
        description="Train, export and score models built with the reference framework.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_command(commands)
    from reference_models.commands import add_student_commands

    add_student_commands(commands)  # check, submit, leaderboard, compare, final, submissions
    return parser


def add_train_command(commands) -> None:
    from reference_models.recipes import RECIPES

    parser = commands.add_parser(
        "train",
        help="train a baseline recipe; write a checkpoint and an .onnx file",
        description="Train one of the baseline recipes from scratch, then write RECIPE's checkpoint "
        "(.npz + .json), its exported .onnx model and a run record (.run.json) into --out.",
    )
    parser.add_argument("recipe", choices=sorted(RECIPES), metavar="RECIPE",
                        help="one of: " + ", ".join(sorted(RECIPES)))
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="prepared datasets (default: $ARENA_DATA_DIR)")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="override the recipe's batch size")
    parser.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    parser.add_argument("--steps", type=int, default=None,
                        help="override the recipe's optimizer steps (step-based recipes: tinygpt)")
    parser.add_argument("--limit", type=int, default=None,
                        help="train on only the first N training examples (quick trials)")
    parser.add_argument("--out", type=Path, default=Path("runs"),
                        help="output folder (default: ./runs)")
    parser.add_argument("--score", action="store_true",
                        help="afterwards, score the .onnx on the task's hidden test set with the "
                        "evaluator and add the scorecard to the run record")
    parser.add_argument("--no-progress", action="store_true", help="no live progress bar")
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    from reference_models.recipes import get_recipe

    recipe = get_recipe(args.recipe)
    overrides = {
        "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
        "limit": args.limit, "steps": args.steps,
    }
    config = recipe.CONFIG.replace(**{k: v for k, v in overrides.items() if v is not None})
    command = shell_command(args.argv)
    result = recipe.train(
        config, data_dir=args.data_dir, out_dir=args.out, progress=not args.no_progress,
        command=command, score=args.score,
    )
    print(json.dumps({k: str(v) for k, v in result.files.items()}, indent=2))
    card = result.record.get("scorecard")
    if card is not None:  # the run ends with what a student came for: the score
        from rich.console import Console

        from reference_models.commands.check import print_scorecard

        print_scorecard(Console(), result.files["onnx"].name, card, "hidden test set")
        return 0 if card.get("valid", True) else 1
    return 0


def shell_command(argv: Sequence[str]) -> str:
    """The command that reproduces this run, with the environment variables that shaped it."""
    environment = [f"{name}={shlex.quote(os.environ[name])}" for name in RECORDED_ENVIRONMENT
                   if name in os.environ]
    return " ".join([*environment, "python -m reference_models", shlex.join(argv)])
