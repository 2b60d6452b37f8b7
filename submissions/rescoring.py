"""Re-scoring: a whole track on another hardware class (``manage.py rescore_track``), and a track
or one submission again on its own class after the evaluator changed (``manage.py rescore``, the
organizer's pages). Re-scores cost no quota and wait behind every student upload
(``submissions.queue.claim_next``).

Choice: the working scores stay visible. Each scored submission keeps its ``Score`` (and its place
on the leaderboard) until its re-score lands; ``lifecycle.record_rescore`` then swaps the score
and rebuilds the leaderboard in one transaction. During the switch the board mixes the two classes
for a while; the alternative (hide every score until all are re-scored) would blank a running
competition for as long as the whole track takes.

Exactly once: a partial unique index allows one pending re-score per submission, a submission
already scored on the target class is skipped, and a run of the old class that lands after the
switch queues its own re-score (``lifecycle._rescore_if_moved``), so running the command twice, or
while uploads are being scored, re-scores each submission once. Nothing is lost: a re-score that
hits platform errors is retried and, when it gives up, leaves the old score in place.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from competitions.models import Track
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q
from hardware.models import HardwareClass
from hardware.services import check_class_name, track_class_name

from . import dispatch, lifecycle
from .models import Rescore, Status, Submission


@dataclass(frozen=True)
class RescorePlan:
    track: Track
    previous_class: str | None
    hardware_class: str
    rescores: int  # scored submissions queued for a re-score
    moved_waiting: int  # waiting uploads that will now be scored on the new class
    already_there: int  # scored on the new class already (nothing to do)


class RescoreRefused(Exception):
    pass


def rescore_track(track: Track, hardware_class: str, *,
                  require_known_class: bool = True) -> RescorePlan:
    """Move ``track`` to ``hardware_class`` and queue a re-score of each of its scored
    submissions not scored there yet; tokens go to the class's queue when this commits."""
    try:
        check_class_name(hardware_class)
    except ValueError as exc:
        raise RescoreRefused(str(exc)) from exc
    if require_known_class and not HardwareClass.objects.filter(name=hardware_class).exists():
        known = ", ".join(HardwareClass.objects.values_list("name", flat=True)) or "none yet"
        raise RescoreRefused(
            f"no worker of hardware class {hardware_class!r} has started (known classes: "
            f"{known}); start one with ARENA_HARDWARE_CLASS={hardware_class}, or pass "
            "--before-worker to queue the re-scores for it now")
    with transaction.atomic():
        locked = Track.objects.select_for_update().get(pk=track.pk)
        previous = track_class_name(locked)
        locked.hardware_class = hardware_class
        locked.save(update_fields=["hardware_class"])
        scored = Submission.objects.filter(track=locked, status__in=lifecycle.SCORED_STATUSES)
        already = scored.filter(score__hardware_class=hardware_class)
        ids = list(scored.exclude(pk__in=already.values("pk")).order_by("created_at", "id")
                   .values_list("id", flat=True))
        # Re-scores still waiting for an earlier target follow the track to the new class.
        retargeted = Rescore.objects.filter(submission__track=locked,
                                            state=Rescore.State.QUEUED).exclude(
            hardware_class=hardware_class).update(hardware_class=hardware_class)
        queued = lifecycle.queue_rescores(ids, hardware_class)
        # Their tokens went to the old class's queue; the new class needs its own.
        waiting = Submission.objects.filter(track=locked, status=Status.QUEUED).count()
        tokens = len(queued) + retargeted + waiting
        transaction.on_commit(lambda: dispatch.send_tokens(hardware_class, tokens))
    track.refresh_from_db()
    return RescorePlan(track, previous, hardware_class, len(queued) + retargeted, waiting,
                       already.count())


def rescore_progress(track: Track) -> dict[str, int]:
    """The track's re-scores by state (queued, scoring, done, failed)."""
    rows = (Rescore.objects.filter(submission__track=track).values("state")
            .annotate(n=Count("id")))
    counts = {state: 0 for state in Rescore.State.values}
    counts.update({row["state"]: row["n"] for row in rows})
    counts["scored_elsewhere"] = Submission.objects.filter(
        track=track, status__in=lifecycle.SCORED_STATUSES).exclude(
        Q(score__hardware_class=track.hardware_class)).count() if track.hardware_class else 0
    return counts


def rescore(track: Track, submission: Submission | None = None) -> int:
    """Queue a re-score on the track's own class of every scored submission of ``track`` (or of
    ``submission`` alone); the number queued. A submission with a re-score pending is not queued
    twice; its current score stays on the leaderboard until the new one is written."""
    if submission is not None and submission.track_id != track.pk:
        raise RescoreRefused("that submission is not on this track")
    class_name = track_class_name(track)
    if not class_name:
        raise RescoreRefused("no scoring worker has started yet: nothing could re-score it")
    scored = Submission.objects.filter(track=track, status__in=lifecycle.SCORED_STATUSES)
    if submission is not None:
        scored = scored.filter(pk=submission.pk)
        if not scored.exists():
            raise RescoreRefused(f"submission #{submission.pk} has no score to replace (it is "
                                 f"{submission.status})")
    ids = list(scored.order_by("created_at", "id").values_list("id", flat=True))
    with transaction.atomic():
        queued = lifecycle.queue_rescores(ids, class_name)
        if queued:
            transaction.on_commit(lambda: dispatch.send_tokens(class_name, len(queued)))
    return len(queued)


def track_named(competition_slug: str, track_slug: str) -> Track:
    """The track of the re-score commands' arguments (``RescoreRefused`` when there is none)."""
    track = Track.objects.select_related("competition").filter(
        competition__slug=competition_slug, slug=track_slug).first()
    if track is None:
        raise RescoreRefused(f"no track {track_slug!r} in a competition {competition_slug!r}")
    return track


def score_version(card: dict | None) -> str:
    """The evaluator and latency protocol that produced a scorecard, as one short label."""
    card = card or {}
    evaluator = (card.get("provenance") or {}).get("evaluator_version") or "unknown"
    protocol = card.get("protocol")
    digest = (hashlib.sha256(json.dumps(protocol, sort_keys=True).encode()).hexdigest()[:8]
              if protocol else "unknown")
    return f"evaluator {evaluator}, protocol {digest}"


# Read on every leaderboard request (API and page): cached per leaderboard version, and for at
# most this long, since a re-score that moves no row leaves the version as it was.
SCORE_VERSIONS_CACHE_S = 30


def score_versions(track: Track) -> dict[str, int]:
    """How many of the track's scores each evaluator/protocol version produced (a track whose
    dict has more than one key mixes versions on its leaderboard). One query over the track's
    scores, cached under the track's leaderboard version for ``SCORE_VERSIONS_CACHE_S``
    (measured at 100,000 scores: the query made the leaderboard API's p50 227 ms at 2 clients)."""
    key = f"score-versions:{track.pk}:{track.leaderboard_version}"
    counts = cache.get(key)
    if counts is None:
        counts = _count_versions(track)
        cache.set(key, counts, SCORE_VERSIONS_CACHE_S)
    return counts


def _count_versions(track: Track) -> dict[str, int]:
    from .models import Score

    counts: dict[str, int] = {}
    for provenance, protocol in Score.objects.filter(
            submission__track=track, submission__status__in=lifecycle.SCORED_STATUSES).values_list(
            "scorecard__provenance", "scorecard__protocol"):
        label = score_version({"provenance": provenance, "protocol": protocol})
        counts[label] = counts.get(label, 0) + 1
    return counts
