"""Roster invitations out of the request: one set-password e-mail task per student, queued after
the import commits, retried on SMTP errors by the worker; with the broker down the import stands
and the mails are sent from the web process, each failure listed on the page."""

from __future__ import annotations

import smtplib
import socket

import pytest
from celery import current_app
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from enrollment import services as enrollment
from enrollment import tasks

from submissions.dispatch import validation_queue_name
from tests.platform.helpers import point_celery_at, restore_celery

pytestmark = pytest.mark.django_db
CANVAS = ("Student,ID,SIS User ID,SIS Login ID,Email,Section\n"
          '"Lovelace, Ada",101,A1,ada,ada@uni.edu,Sec 1\n'
          '"Turing, Alan",102,A2,alan,alan@uni.edu,Sec 1\n')
UNUSED_PORT = 8669  # one of this suite's ports, with nothing listening: a broker that is down


def organizer_client(instructor):
    from django.test import Client

    client = Client()
    client.force_login(instructor)
    return client


def import_page(client, roster: str = CANVAS, send: bool = True):
    data = {"action": "import", "roster": SimpleUploadedFile("canvas.csv", roster.encode())}
    if send:
        data["send_email"] = "on"
    return client.post("/c/course/organize/enrollment/", data)


def queued_messages() -> list[tuple[str, list]]:
    """(task name, args) of every message waiting on the (in-memory) validation queue."""
    found = []
    with current_app.connection_for_read() as connection:
        queue = connection.SimpleQueue(validation_queue_name(), no_ack=True)
        while True:
            try:
                message = queue.get(timeout=0.1)
            except queue.Empty:
                break
            found.append((message.headers["task"], message.payload[0]))
        queue.close()
    return found


# Committed for real (no test transaction around it), as in a request: the queueing runs on
# commit, before the page is drawn.
@pytest.mark.django_db(transaction=True)
def test_the_import_queues_one_mail_per_student_and_sends_none_itself(competition, instructor):
    response = import_page(organizer_client(instructor))
    page = response.content.decode()
    assert response.status_code == 200, page
    assert "2 account(s) made, 0 updated, 2 invitation(s) queued" in page
    assert mail.outbox == []  # nothing sent inside the request
    messages = queued_messages()
    assert [name for name, _ in messages] == [enrollment.SEND_INVITATION] * 2
    # What a worker does with each message: the student's own e-mail with their link.
    for _, args in messages:
        assert tasks.send_invitation.apply(args=args).get() is True
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@uni.edu", "alan@uni.edu"]
    assert all("/accounts/reset/" in m.body for m in mail.outbox)


def test_unticked_box_queues_nothing(competition, instructor):
    page = import_page(organizer_client(instructor), send=False).content.decode()
    assert "0 invitation(s) queued" in page and queued_messages() == []


def test_the_task_retries_smtp_errors_then_sends(competition, make_user, monkeypatch):
    student = make_user("ada")
    student.email = "ada@uni.edu"
    student.set_unusable_password()
    student.save()
    real_send = enrollment.send_mail
    calls = []

    def flaky(*args, **kwargs):
        calls.append(kwargs["recipient_list"])
        if len(calls) < 3:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return real_send(*args, **kwargs)

    monkeypatch.setattr(enrollment, "send_mail", flaky)
    outcome = tasks.send_invitation.apply(args=(student.pk, competition.pk, "http://arena.test/"))
    assert outcome.successful() and outcome.get() is True
    assert len(calls) == 3 and [m.to for m in mail.outbox] == [["ada@uni.edu"]]
    assert "http://arena.test/accounts/reset/" in mail.outbox[0].body
    # A student who set a password meanwhile gets no stale link.
    student.set_password("ada-own-password")
    student.save()
    assert tasks.send_invitation.apply(args=(student.pk, competition.pk, "http://t/")).get() is False
    assert len(mail.outbox) == 1


def test_a_mail_server_that_stays_down_fails_the_task_after_its_retries(competition, make_user,
                                                                        monkeypatch):
    student = make_user("ada")
    student.email = "ada@uni.edu"
    student.set_unusable_password()
    student.save()
    calls = []

    def down(*args, **kwargs):
        calls.append(1)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(enrollment, "send_mail", down)
    outcome = tasks.send_invitation.apply(args=(student.pk, competition.pk, "http://t/"))
    assert outcome.failed() and isinstance(outcome.result, ConnectionRefusedError)
    assert len(calls) == tasks.send_invitation.max_retries + 1


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_the_import_stands_and_mails_go_from_the_web_process(
        competition, instructor, monkeypatch):
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", UNUSED_PORT)) != 0, "the test's port is in use"
    old = point_celery_at(f"redis://127.0.0.1:{UNUSED_PORT}/7")
    real_send = enrollment.send_mail

    def refuses_ada(*args, **kwargs):
        if kwargs["recipient_list"] == ["ada@uni.edu"]:
            raise smtplib.SMTPRecipientsRefused({"ada@uni.edu": (550, b"mailbox unavailable")})
        return real_send(*args, **kwargs)

    monkeypatch.setattr(enrollment, "send_mail", refuses_ada)
    try:
        response = import_page(organizer_client(instructor))
    finally:
        restore_celery(old)
    page = response.content.decode()
    assert response.status_code == 200, page
    assert "2 account(s) made" in page and "0 invitation(s) queued" in page
    assert "could not be reached: 1 invitation(s) were sent directly" in page
    assert "1 invitation(s) could not be sent" in page and "ada: SMTPRecipientsRefused" in page
    assert [m.to for m in mail.outbox] == [["alan@uni.edu"]]
    assert competition.participations.filter(user__username__in=["ada", "alan"]).count() == 2
