"""E-mail to a student when an upload of theirs is scored or rejected (opt-out per student).

Beat's sweep (``tasks.send_result_emails``) looks for finished submissions without a ``Notice``;
it never touches the scoring path, so a mail server that is down delays no score."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from submissions.models import Status, Submission

from .models import Notice, Preference

log = logging.getLogger(__name__)
NOTIFIED_STATUSES = (Status.SCORED, Status.OVER_LIMIT, Status.REJECTED)
# Results older than this are never mailed (a sweep turned on late does not mail a backlog).
LOOKBACK = timedelta(days=2)


def wants_email(user) -> bool:
    preference = Preference.objects.filter(user=user).first()
    return preference is None or preference.email_results


def set_wants_email(user, wanted: bool) -> None:
    Preference.objects.update_or_create(user=user, defaults={"email_results": wanted})


def pending(now=None):
    """Finished student submissions not yet mailed about, whose student has an address and has
    not opted out."""
    now = now or timezone.now()
    opted_out = Preference.objects.filter(email_results=False).values("user_id")
    return (Submission.objects.filter(status__in=NOTIFIED_STATUSES, is_baseline=False,
                                      finished_at__gte=now - LOOKBACK, notice__isnull=True)
            .exclude(user__email="").exclude(user_id__in=opted_out)
            .select_related("user", "track__competition", "score").order_by("finished_at"))


def message_for(submission: Submission, base_url: str = "") -> tuple[str, str]:
    """(subject, body) of the e-mail about ``submission``'s result."""
    competition = submission.track.competition
    name = submission.label or f"submission #{submission.pk}"
    page = f"{base_url.rstrip('/')}/c/{competition.slug}/me/" if base_url else ""
    if submission.status == Status.REJECTED:
        subject = f"{competition.title}: {name} was rejected"
        body = f"Your upload {name} (track {submission.track.slug}) was rejected:\n\n{submission.error}\n"
    else:
        score = getattr(submission, "score", None)
        accuracy = (f"{score.public_accuracy:.2%}" if score and score.public_accuracy is not None
                    else "not measured")
        subject = f"{competition.title}: {name} was scored"
        body = (f"Your upload {name} (track {submission.track.slug}) was scored: public accuracy "
                f"{accuracy}.\n")
        if submission.status == Status.OVER_LIMIT:
            body += f"It is over a limit of the track and not ranked: {submission.error}\n"
    if page:
        body += f"\nYour submissions: {page}\n"
    body += "\nTo stop these e-mails, untick the box on your submissions page.\n"
    return subject, body


def send_result_emails(limit: int = 200, base_url: str | None = None) -> int:
    """Mail each pending result once; the number of e-mails sent."""
    base_url = settings.ARENA_SITE_URL if base_url is None else base_url
    sent = 0
    for submission in pending()[:limit]:
        try:
            with transaction.atomic():
                notice = Notice.objects.create(submission=submission, status=submission.status)
        except IntegrityError:
            continue  # another sweep took it
        subject, body = message_for(submission, base_url)
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [submission.user.email])
            sent += 1
        except Exception as exc:  # the mail server's fault: the score stands, the mail is lost
            log.warning("could not e-mail %s about submission %s: %s", submission.user.email,
                        submission.pk, exc)
            Notice.objects.filter(pk=notice.pk).update(error=f"{type(exc).__name__}: {exc}")
    return sent
