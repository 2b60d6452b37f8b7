"""Getting students in: join links and codes, sign-up, roster import from an LMS export, the
set-password e-mail, and rotating a student's API token."""

from __future__ import annotations

import csv
import io
import logging
import secrets
from dataclasses import dataclass, field

from accounts.services import check_username, create_user
from competitions.services import join
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.authtoken.models import Token

from .models import JoinLink

log = logging.getLogger(__name__)

# The column names an LMS export uses, lower-cased (Canvas gradebook and people exports, Moodle's
# user and participants exports); the first one found wins.
USERNAME_COLUMNS = ("username", "sis login id", "login id", "login_id", "user name", "user_name")
EMAIL_COLUMNS = ("email", "email address", "e-mail", "e-mail address", "emailaddress")
FIRST_NAME_COLUMNS = ("first name", "firstname", "first_name", "given name")
LAST_NAME_COLUMNS = ("last name", "lastname", "last_name", "surname", "family name")
FULL_NAME_COLUMNS = ("student", "name", "full name", "fullname")
# Canvas puts a "Points Possible" row under the header of its gradebook export.
SKIPPED_NAMES = {"points possible", "test student"}
MAX_ROSTER_ROWS = 5000


class EnrollmentRefused(Exception):
    """A sign-up, join or import is refused; ``str()`` says why in words."""


def new_code() -> str:
    """12 URL-safe characters (72 bits): not guessable, short enough to read out in class."""
    return secrets.token_urlsafe(9)


def join_link(competition) -> JoinLink:
    """The competition's link (made, turned off, the first time an organizer looks)."""
    link, _ = JoinLink.objects.get_or_create(
        competition=competition, defaults={"code": new_code(), "enabled": False})
    return link


def rotate(competition) -> JoinLink:
    """A new code: the old link and code stop working at once."""
    link = join_link(competition)
    link.code = new_code()
    link.save(update_fields=["code", "rotated_at"])
    return link


def set_enabled(competition, enabled: bool) -> JoinLink:
    link = join_link(competition)
    link.enabled = enabled
    link.save(update_fields=["enabled", "rotated_at"])
    return link


def competition_for_code(code: str):
    """The competition an enabled link's code joins, or None (wrong, rotated or turned off)."""
    link = (JoinLink.objects.select_related("competition")
            .filter(code=code.strip(), enabled=True).first()) if code else None
    return link.competition if link else None


@transaction.atomic
def sign_up(competition, username: str, email: str, password: str):
    """A new student account, joined to ``competition``; raises ``EnrollmentRefused``."""
    user_model = get_user_model()
    try:
        check_username(username)
    except ValueError as exc:
        raise EnrollmentRefused(str(exc)) from None
    if user_model.objects.filter(username__iexact=username).exists():
        raise EnrollmentRefused(f"The username {username!r} is taken: choose another, or log in "
                                "if it is yours.")
    candidate = user_model(username=username, email=email)
    try:
        validate_password(password, candidate)
    except ValidationError as exc:
        raise EnrollmentRefused(" ".join(exc.messages)) from None
    user, _ = create_user(username, password=password, email=email)
    join(competition, user)
    return user


@dataclass
class RosterResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "row N: why", rows skipped
    # The set-password e-mails: handed to the mail workers (sent and retried there), sent from
    # the web process because the queue could not be reached, or not sent ("name: why").
    queued: list[str] = field(default_factory=list)
    sent_directly: list[str] = field(default_factory=list)
    not_sent: list[str] = field(default_factory=list)


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def parse_roster(text: str) -> tuple[list[dict], list[str]]:
    """Rows of ``{"username", "email", "first_name", "last_name"}`` from an LMS CSV, and the
    problems of the rows that cannot be used. Raises ``EnrollmentRefused`` when the file has
    neither a username nor an e-mail column."""
    text = text.lstrip("\ufeff")
    try:
        sample = text[:4096]
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample else csv.excel
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if not header:
        raise EnrollmentRefused("The file is empty: export the class list as CSV from Canvas or "
                                "Moodle and upload that.")
    columns = {name: _column(header, names) for name, names in (
        ("username", USERNAME_COLUMNS), ("email", EMAIL_COLUMNS), ("first", FIRST_NAME_COLUMNS),
        ("last", LAST_NAME_COLUMNS), ("full", FULL_NAME_COLUMNS))}
    if columns["username"] is None and columns["email"] is None:
        raise EnrollmentRefused(
            "No username or e-mail column found. The first row must name the columns, for "
            "example 'Username,Email' (Moodle) or 'Student,ID,SIS Login ID' (Canvas); found: "
            + ", ".join(h.strip() for h in header))

    def cell(row: list[str], name: str) -> str:
        index = columns[name]
        return row[index].strip() if index is not None and index < len(row) else ""

    rows, problems = [], []
    for number, row in enumerate(reader, start=2):
        if number > MAX_ROSTER_ROWS + 1:
            problems.append(f"rows after {MAX_ROSTER_ROWS} were not read")
            break
        if not any(c.strip() for c in row) or cell(row, "full").lower() in SKIPPED_NAMES:
            continue
        email = cell(row, "email")
        username = cell(row, "username") or email
        if not username:
            problems.append(f"row {number}: no username or e-mail")
            continue
        first, last = cell(row, "first"), cell(row, "last")
        if not (first or last) and cell(row, "full"):
            full = cell(row, "full")
            if "," in full:  # Canvas: "Last, First"
                last, first = (part.strip() for part in full.split(",", 1))
            else:
                first, _, last = full.partition(" ")
        try:
            check_username(username)
        except ValueError as exc:
            problems.append(f"row {number}: {exc}")
            continue
        rows.append({"username": username, "email": email, "first_name": first[:150],
                     "last_name": last[:150]})
    return rows, problems


def import_roster(competition, text: str, *, base_url: str, send: bool = True) -> RosterResult:
    """Create or update an account per roster row, make each a participant, and e-mail the new
    ones (and existing ones without a password) a link to set their password: queued once the
    accounts are committed (``queue_invitations``), never sent inside the import itself."""
    rows, problems = parse_roster(text)
    result = RosterResult(problems=problems)
    invited = []
    user_model = get_user_model()
    for row in rows:
        with transaction.atomic():
            existing = user_model.objects.filter(username=row["username"]).first()
            if existing is None:
                user, _ = create_user(row["username"], email=row["email"])
                result.created.append(user.username)
            else:
                user = existing
                result.updated.append(user.username)
            changed = [f for f in ("email", "first_name", "last_name")
                       if row[f] and getattr(user, f) != row[f]]
            for name in changed:
                setattr(user, name, row[name])
            if changed:
                user.save(update_fields=changed)
            join(competition, user)
        if send and user.email and not user.has_usable_password():
            invited.append(user)
    if invited:
        # After the accounts are committed: a worker must find the user it mails.
        transaction.on_commit(lambda: queue_invitations(invited, competition, base_url, result))
    return result


SEND_INVITATION = "enrollment.tasks.send_invitation"


def queue_invitations(users: list, competition, base_url: str, result: RosterResult) -> None:
    """One set-password e-mail task per student on the validation queue (its workers are light
    and always running; they send and retry on SMTP errors). If the broker cannot be reached,
    the import stands: the rest are sent from this process, each failure noted in
    ``result.not_sent`` (importing the file again mails whoever still has no password)."""
    from celery import current_app

    from submissions.dispatch import publishing_connection, validation_queue_name

    pending = list(users)
    try:
        with publishing_connection() as connection:
            queue = validation_queue_name()
            while pending:
                current_app.send_task(
                    SEND_INVITATION, (pending[0].pk, competition.pk, base_url), queue=queue,
                    connection=connection, retry=True,
                    retry_policy=settings.ARENA_PUBLISH_RETRY_POLICY)
                result.queued.append(pending.pop(0).username)
    except Exception as exc:  # kombu's OperationalError, socket errors: the broker is down
        log.warning("could not queue %d set-password e-mail(s) (%s: %s); sending them from the "
                    "web process", len(pending), type(exc).__name__, exc)
    for user in pending:
        try:
            send_set_password(user, base_url, competition)
        except Exception as exc:  # the mail server's fault: the account stands, the mail is lost
            log.warning("could not e-mail %s a set-password link: %s", user.email, exc)
            result.not_sent.append(f"{user.username}: {type(exc).__name__}: {exc}")
        else:
            result.sent_directly.append(user.username)


def send_invitation(user_id: int, competition_id: int, base_url: str) -> bool:
    """The set-password e-mail of one imported student (what the mail task runs); False when
    there is nothing to send any more (password already set, no address, account gone).
    Raises what the mail backend raises, so the task can retry."""
    from competitions.models import Competition

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not user.email or user.has_usable_password():
        return False
    send_set_password(user, base_url, Competition.objects.filter(pk=competition_id).first())
    return True


def set_password_link(user, base_url: str) -> str:
    """A one-time link to Django's own set-password page (it expires after
    ``PASSWORD_RESET_TIMEOUT`` and once the password is set)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})
    return base_url.rstrip("/") + path


def send_set_password(user, base_url: str, competition=None) -> None:
    where = f" for {competition.title}" if competition is not None else ""
    link = set_password_link(user, base_url)
    send_mail(
        subject=f"Your Model Arena account{where}",
        message=(f"Hello {user.first_name or user.username},\n\nAn account{where} was made for "
                 f"you. Your username is: {user.username}\n\nSet your password here (the link "
                 f"works once):\n{link}\n\nThen log in at {base_url.rstrip('/')}/accounts/login/\n"),
        from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[user.email],
    )


def rotate_token(user) -> str:
    """A new API token; the old one stops working at once."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user).key
