"""Roster invitations for real: the import page (this process) queues one task per student on
Redis after commit; a real Celery worker of the validation queue sends them; a mail server that
refuses at first is tried again until it answers, then each student gets exactly one e-mail with
a set-password link that works."""

from __future__ import annotations

import asyncore
import re
import socket
import threading
import warnings

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.integration import platform_stack as stack
from tests.integration import test_platform_queue as platform_queue
from tests.platform import helpers

with warnings.catch_warnings():  # the standard library's SMTP server: enough for a test
    warnings.simplefilter("ignore", DeprecationWarning)
    import smtpd

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

competition, instructor = helpers.competition, helpers.instructor
make_user, suite_database = helpers.make_user, platform_queue.suite_database
redis_queue = platform_queue.redis_queue
SMTP_PORT = 8668  # of this suite's ports; nothing listens there until the test starts a server
ROSTER = ("Username;First name;Last name;Email address\n"
          "ada;Ada;Lovelace;ada@uni.edu\n"
          "alan;Alan;Turing;alan@uni.edu\n")


class Inbox(smtpd.SMTPServer):
    """Keeps every message it is sent: (recipients, body)."""

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), None, decode_data=True)
        self.received: list[tuple[list[str], str]] = []

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        self.received.append((list(rcpttos), data))


def import_roster(instructor) -> str:
    organizer = Client()
    organizer.force_login(instructor)
    return organizer.post("/c/course/organize/enrollment/", {
        "action": "import", "send_email": "on",
        "roster": SimpleUploadedFile("moodle.csv", ROSTER.encode())}).content.decode()


@pytest.mark.timeout(120)
def test_invitations_are_sent_by_the_worker_and_retried_until_the_mail_server_answers(
        competition, instructor, suite_database, redis_queue, tmp_path):
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", SMTP_PORT)) != 0, f"port {SMTP_PORT} is in use"
    env = stack.stack_env(
        DATABASE_URL=suite_database, CELERY_BROKER_URL=platform_queue.REDIS_URL,
        ARENA_CELERY_QUEUE=redis_queue, ARENA_VAR_DIR=tmp_path / "var",
        ARENA_EMAIL_HOST="127.0.0.1", ARENA_EMAIL_PORT=SMTP_PORT, ARENA_EMAIL_USE_TLS="false",
        ARENA_EMAIL_TIMEOUT_S=2, ARENA_MAIL_RETRY_S=1)
    log = tmp_path / "validator.log"
    worker = stack.start_validator(env, log)
    inbox = None
    try:
        page = import_roster(instructor)
        assert "2 account(s) made, 0 updated, 2 invitation(s) queued" in page, page
        # The mail server is down: the worker's tries are refused and retried.
        stack.wait_for(lambda: log.read_text().count("Retry in") >= 2, 60,
                       "the worker to retry the refused e-mails", (log,), every=0.2)
        inbox = Inbox(SMTP_PORT)
        loop = threading.Thread(target=asyncore.loop, kwargs={"timeout": 0.1}, daemon=True)
        loop.start()
        stack.wait_for(lambda: len(inbox.received) >= 2, 60,
                       "the retried e-mails to reach the mail server", (log,), every=0.2)
    finally:
        stack.stop(worker)
        if inbox is not None:
            inbox.close()
    assert sorted(to for to, _ in inbox.received) == [["ada@uni.edu"], ["alan@uni.edu"]]
    body = next(data for to, data in inbox.received if to == ["ada@uni.edu"])
    assert "Your username is: ada" in body
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+)", body).group(1)
    form_page = Client().get(link, follow=True)
    assert "Set your password" in form_page.content.decode()
