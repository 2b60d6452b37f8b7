"""What the submissions app tells the rest of the platform, without importing it.

``scores_changed`` is sent by ``submissions.lifecycle`` inside the transaction that wrote (or
replaced) a score, after locking the track row, with ``track`` and the submission's
``submission_id`` and ``user_id``. ``leaderboards`` updates the stored rows of that student there
(``leaderboards.incremental``), so a failure rolls the score back with it: a score is never
written without its leaderboard. Receivers must not commit or open their own connection.

``validated`` is sent by ``submissions.validation.record_validation`` once an upload passed the
gate and is queued, with its ``submission_id`` (``integrity`` looks for copies then).
"""

from django.dispatch import Signal

scores_changed = Signal()
validated = Signal()
