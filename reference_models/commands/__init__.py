"""The student subcommands of ``arena``: ``check``, ``submit``, ``leaderboard``, ``compare``,
``final`` and ``submissions``.

``add_student_commands(commands)`` registers them on the CLI's subparsers (see ``cli.py``).
"""

from __future__ import annotations

from reference_models.commands import check, compare, final, leaderboard, submit


def add_student_commands(commands) -> None:
    for module in (check, submit, leaderboard, compare, final):
        module.add_command(commands)


__all__ = ["add_student_commands"]
