"""The fair scoring queue: which waiting submission a worker of a hardware class scores next.

The broker never decides the order. Queued submissions stay in the database; a broker message is
only a token ("a worker of class C may score one more"), one per queued submission. The worker
that receives a token claims the *fairest* claimable submission of its class with the
conditional UPDATE of ``lifecycle.claim``, so two workers never take the same one and a worker
that dies holding one leaves it to the stuck-submission re-queue, as before.

Fairness (``fair_order``), round robin between students: a waiting upload's *turn* is the number
of that student's uploads of the class already claimed in the last ``ARENA_FAIR_WINDOW_S``
seconds plus the number of that student's uploads waiting before it; the lowest turn goes first,
then the oldest upload. One student's five uploads therefore never wait ahead of another student's
first, and a submission's turn does not change when others are claimed, so the position a student
is shown only improves (until a fairer upload arrives).

Re-scores (``manage.py rescore_track``) wait behind every fresh upload of the class: the scores
they replace stay on the leaderboard meanwhile.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from competitions.models import Track
from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from hardware.services import default_class_name, track_class_name

from . import lifecycle
from .models import Rescore, Status, Submission

# How many recently finished runs the estimated wait averages.
RECENT_RUNS = 20


@dataclass(frozen=True)
class Waiting:
    """A queued submission as the fairness rule sees it."""

    id: int
    user_id: int
    created_at: datetime


@dataclass(frozen=True)
class QueuePosition:
    position: int  # 1: scored next
    ahead: int  # submissions of the same class that will be scored before it
    estimated_wait_seconds: float | None  # position x the class's recent mean scoring time
    hardware_class: str | None = None


@dataclass(frozen=True)
class Claim:
    kind: str  # "submission" or "rescore"
    id: int
    token: int
    submission_id: int


def fair_order(waiting: Iterable[Waiting], recent: Mapping[int, int]) -> list[Waiting]:
    """The order in which ``waiting`` submissions are scored (see the module docstring).

    ``recent`` maps a user id to how many of that user's submissions were claimed lately."""
    earlier: Counter[int] = Counter()
    keyed = []
    for item in sorted(waiting, key=lambda w: (w.created_at, w.id)):
        turn = recent.get(item.user_id, 0) + earlier[item.user_id]
        earlier[item.user_id] += 1
        keyed.append(((turn, item.created_at, item.id), item))
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed]


def class_filter(class_name: str | None, default: str | None, prefix: str = "track__") -> Q:
    """Submissions (or, with ``prefix``, rows reached through it) of tracks that ``class_name``
    scores: its own tracks, and the tracks with no class when it is the default class."""
    field = f"{prefix}hardware_class"
    if class_name is None:  # no worker has started yet: the tracks with no class wait
        return Q(**{field: ""})
    own = Q(**{field: class_name})
    return own | Q(**{field: ""}) if class_name == default else own


def claimable_filter(now: datetime | None = None) -> Q:
    now = now or timezone.now()
    ready = Q(retry_after__isnull=True) | Q(retry_after__lte=now)
    return (Q(status=Status.QUEUED) & ready) | (Q(status=Status.SCORING) & lifecycle.abandoned())


def recent_claims(class_q: Q, now: datetime | None = None) -> dict[int, int]:
    """Per user: submissions of the class claimed in the fairness window (one query)."""
    since = (now or timezone.now()) - timedelta(seconds=settings.ARENA_FAIR_WINDOW_S)
    rows = (Submission.objects.filter(class_q, scoring_started_at__gte=since)
            .exclude(status=Status.QUEUED).values("user_id").annotate(n=Count("id")))
    return {row["user_id"]: row["n"] for row in rows}


def _waiting(queryset) -> list[Waiting]:
    return [Waiting(*row) for row in queryset.values_list("id", "user_id", "created_at")]


def claim_next(class_name: str, lacking_sets: Collection[str] = ()) -> Claim | None:
    """Claim the fairest claimable submission of ``class_name`` (else its oldest pending
    re-score); None when there is nothing to do.

    ``lacking_sets``: imported hidden sets the calling worker does not have. A submission of a
    track scored on one of them that a worker has already refused (a platform retry) is left to
    the workers that have the set, so it is retried on one of them."""
    default = default_class_name()
    class_q = class_filter(class_name, default)
    rows = Submission.objects.filter(class_q, claimable_filter())
    if lacking_sets:
        rows = rows.exclude(platform_retries__gt=0, track__hidden_set__in=list(lacking_sets))
    waiting = _waiting(rows)
    if waiting:
        # Checked again in the claim's UPDATE: the track may have moved to another class since.
        still_ours = Q(track_id__in=Track.objects.filter(
            class_filter(class_name, default, prefix="")).values("pk"))
        for candidate in fair_order(waiting, recent_claims(class_q)):
            # Lost to another worker: the next fairest one (the order of the rest still holds).
            token = lifecycle.claim(candidate.id, still_ours)
            if token is not None:
                return Claim("submission", candidate.id, token, candidate.id)
    now = timezone.now()
    ready = Q(retry_after__isnull=True) | Q(retry_after__lte=now)
    pending = Rescore.objects.filter(
        (Q(state=Rescore.State.QUEUED) & ready)
        | (Q(state=Rescore.State.SCORING) & lifecycle.abandoned()),
        hardware_class=class_name,
    )
    if lacking_sets:
        pending = pending.exclude(platform_retries__gt=0,
                                  submission__track__hidden_set__in=list(lacking_sets))
    pending = pending.order_by("created_at", "id").values_list("id", "submission_id")
    for rescore_id, submission_id in pending:
        token = lifecycle.claim_rescore(rescore_id, class_name)
        if token is not None:
            return Claim("rescore", rescore_id, token, submission_id)
    return None


def mean_scoring_seconds(class_name: str | None, default: str | None = None) -> float | None:
    """The mean wall time of the class's last runs (claim to result); None with no history."""
    class_q = class_filter(class_name, default if default is not None else default_class_name())
    runs = (Submission.objects.filter(class_q, finished_at__isnull=False,
                                      scoring_started_at__isnull=False,
                                      status__in=(Status.SCORED, Status.OVER_LIMIT,
                                                  Status.REJECTED))
            .order_by("-finished_at").values_list("scoring_started_at", "finished_at")
            [:RECENT_RUNS])
    seconds = [(end - start).total_seconds() for start, end in runs if end >= start]
    return sum(seconds) / len(seconds) if seconds else None


def queue_position(submission: Submission) -> QueuePosition | None:
    """Where a queued submission stands in its class's fair order; None unless it is queued."""
    if submission.status != Status.QUEUED:
        return None
    default = default_class_name()
    class_name = track_class_name(submission.track)
    class_q = class_filter(class_name, default)
    # Every queued one counts, also those waiting out a retry back-off.
    waiting = _waiting(Submission.objects.filter(class_q, status=Status.QUEUED))
    order = [item.id for item in fair_order(waiting, recent_claims(class_q))]
    if submission.pk not in order:  # its track changed class a moment ago
        return None
    ahead = order.index(submission.pk)
    mean = mean_scoring_seconds(class_name, default)
    wait = round((ahead + 1) * mean, 1) if mean is not None else None
    return QueuePosition(position=ahead + 1, ahead=ahead, estimated_wait_seconds=wait,
                         hardware_class=class_name)
