"""The leaderboards' side of ``submissions.signals.scores_changed``: the stored rows follow a new
or replaced score in the transaction that wrote it (the track row is already locked there), and
only the rows that score changes are written (``leaderboards.incremental``)."""

from __future__ import annotations

from .incremental import refresh_student


def on_scores_changed(sender, *, track, submission_id: int, user_id: int, **kwargs) -> None:
    refresh_student(track, user_id)
