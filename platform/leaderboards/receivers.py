"""The leaderboards' side of ``submissions.signals.scores_changed``: the stored rows follow a new
or replaced score in the transaction that wrote it (the track row is already locked there)."""

from __future__ import annotations

from .ranking import rebuild_track


def on_scores_changed(sender, *, track, submission_id: int, user_id: int, **kwargs) -> None:
    rebuild_track(track)
