"""Issue 12's accounts: join link and code (rotate, turn off), sign-up, roster import from
Canvas and Moodle exports with set-password e-mails, password reset, API token rotation,
result e-mails with opt-out."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from enrollment import services as enrollment
from enrollment import tasks
from notifications import services as notifications
from notifications.models import Notice

from tests.platform.helpers import client_for
from tests.platform.test_course_rules import upload
from tests.platform.test_roster_mail import queued_messages

pytestmark = pytest.mark.django_db

CANVAS = (
    "Student,ID,SIS User ID,SIS Login ID,Email,Section\n"
    "    Points Possible,,,,,\n"
    '"Lovelace, Ada",101,A1,ada,ada@uni.edu,Sec 1\n'
    '"Turing, Alan",102,A2,alan,alan@uni.edu,Sec 1\n'
    '"Bad, Name",103,A3,bad name!,bad@uni.edu,Sec 1\n'
)
MOODLE = ("Username;First name;Last name;Email address\n"
          "grace;Grace;Hopper;grace@uni.edu\n"
          "ada;Ada;Lovelace;ada@new.edu\n")


def organizer_client(instructor) -> Client:
    client = Client()
    client.force_login(instructor)
    return client


def test_join_link_signs_up_joins_and_logs_in(unlisted, instructor):
    anonymous = Client()
    link = enrollment.join_link(unlisted)
    assert not link.enabled  # off until the organizer turns it on
    assert anonymous.get(f"/join/{link.code}/").status_code == 404
    enrollment.set_enabled(unlisted, True)
    page = anonymous.get(f"/join/{link.code}/")
    assert page.status_code == 200 and "Sign up for Invitation only" in page.content.decode()
    weak = anonymous.post(f"/join/{link.code}/", {"username": "zoe", "password": "short"})
    assert weak.status_code == 400 and "at least 8" in weak.content.decode()
    response = anonymous.post(f"/join/{link.code}/", {"username": "zoe", "email": "z@uni.edu",
                                                       "password": "a-long-password"})
    assert response.status_code == 302 and response["Location"] == "/c/secret/me/"
    zoe = get_user_model().objects.get(username="zoe")
    assert unlisted.is_participant(zoe) and zoe.check_password("a-long-password")
    assert anonymous.get("/c/secret/me/").status_code == 200  # logged in, sees the unlisted one
    taken = Client().post(f"/join/{link.code}/", {"username": "ZOE", "password": "x" * 10})
    assert "is taken" in taken.content.decode()


def test_rotating_the_code_stops_the_old_link_and_code(unlisted, instructor, make_user):
    link = enrollment.set_enabled(unlisted, True)
    old = link.code
    client = organizer_client(instructor)
    page = client.get("/c/secret/organize/enrollment/").content.decode()
    assert old in page
    client.post("/c/secret/organize/enrollment/", {"action": "rotate"})
    new = enrollment.join_link(unlisted).code
    assert new != old and Client().get(f"/join/{old}/").status_code == 404
    by_code = Client().post("/join/", {"code": new})
    assert by_code.status_code == 302 and by_code["Location"] == f"/join/{new}/"
    assert Client().post("/join/", {"code": old}).status_code == 400
    # A logged-in student joins with one click.
    kim = make_user("kim")
    student = Client()
    student.force_login(kim)
    assert "Join Invitation only" in student.get(f"/join/{new}/").content.decode()
    student.post(f"/join/{new}/")
    assert unlisted.is_participant(kim)
    # The enrollment page is the organizer's only.
    assert student.get("/c/secret/organize/enrollment/").status_code == 404


def test_parse_roster_reads_canvas_and_moodle_columns():
    rows, problems = enrollment.parse_roster(CANVAS)
    assert [(r["username"], r["email"], r["first_name"], r["last_name"]) for r in rows] == [
        ("ada", "ada@uni.edu", "Ada", "Lovelace"), ("alan", "alan@uni.edu", "Alan", "Turing")]
    assert len(problems) == 1 and problems[0].startswith("row 5:")
    rows, problems = enrollment.parse_roster(MOODLE)
    assert [r["username"] for r in rows] == ["grace", "ada"] and not problems
    with pytest.raises(enrollment.EnrollmentRefused, match="No username or e-mail column"):
        enrollment.parse_roster("Name,Score\nAda,3\n")


@pytest.mark.django_db(transaction=True)  # the mails are queued once the import commits
def test_roster_import_creates_updates_and_mails_a_working_set_password_link(competition,
                                                                            instructor):
    client = organizer_client(instructor)
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post("/c/course/organize/enrollment/", {
        "action": "import", "send_email": "on",
        "roster": SimpleUploadedFile("canvas.csv", CANVAS.encode())})
    page = response.content.decode()
    assert "2 account(s) made, 0 updated, 2 invitation(s) queued" in page and "row 5" in page
    # What the mail worker does with each (one per student); earlier tests may have left other
    # tasks' messages on the in-memory queue.
    invitations = [args for name, args in queued_messages() if name == tasks.send_invitation.name]
    assert len(invitations) == 2
    for args in invitations:
        tasks.send_invitation.apply(args=args).get()
    assert {m.to[0] for m in mail.outbox} == {"ada@uni.edu", "alan@uni.edu"}
    ada = get_user_model().objects.get(username="ada")
    assert competition.is_participant(ada) and not ada.has_usable_password()
    # The link in the e-mail sets the password once.
    body = next(m.body for m in mail.outbox if m.to == ["ada@uni.edu"])
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+)", body).group(1)
    student = Client()
    form_page = student.get(link, follow=True)
    assert "Set your password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0] if form_page.redirect_chain else link
    done = student.post(set_url, {"new_password1": "ada-new-password",
                                  "new_password2": "ada-new-password"})
    assert done.status_code == 302
    ada.refresh_from_db()
    assert ada.check_password("ada-new-password")
    assert "does not work" in Client().get(link, follow=True).content.decode()
    # Moodle's file updates Ada's address and adds Grace.
    result = enrollment.import_roster(competition, MOODLE, base_url="http://t/", send=False)
    assert result.created == ["grace"] and result.updated == ["ada"]
    ada.refresh_from_db()
    assert ada.email == "ada@new.edu"
    assert ada.check_password("ada-new-password")  # an update never touches the password


def test_password_reset_mails_a_link(make_user):
    user = make_user("pat")
    user.email = "pat@uni.edu"
    user.set_password("old-password-1")
    user.save()
    page = Client().get("/accounts/password_reset/")
    assert page.status_code == 200 and "Reset your password" in page.content.decode()
    assert Client().post("/accounts/password_reset/", {"email": "pat@uni.edu"}).status_code == 302
    assert mail.outbox and "/accounts/reset/" in mail.outbox[0].body
    assert "Forgot your password" in Client().get("/accounts/login/").content.decode()


def test_rotating_the_api_token_retires_the_old_one(competition, make_user):
    ann = make_user("ann")
    old = ann.api_token
    assert client_for(ann).get("/api/submissions/").status_code == 200
    browser = Client()
    browser.force_login(ann)
    page = browser.get("/c/course/me/").content.decode()
    assert old in page and "Replace my API token" in page
    browser.post("/account/token/rotate/", {"next": "/c/course/me/"})
    assert client_for(ann).get("/api/submissions/").status_code == 401
    new = browser.get("/c/course/me/").content.decode()
    assert old not in new
    assert browser.post("/account/token/rotate/", {"next": "https://evil.example/"})[
        "Location"] == "/"


def test_result_emails_go_once_and_respect_the_opt_out(competition, make_user):
    track = competition.tracks.get(slug="mnist")
    ann, bob = make_user("ann"), make_user("bob")
    for user in (ann, bob):
        user.email = f"{user.username}@uni.edu"
        user.save()
    upload(track, ann, accuracy=0.93)
    browser = Client()
    browser.force_login(bob)
    assert "E-mail me when an upload is scored" in browser.get("/c/course/me/").content.decode()
    browser.post("/account/email-preference/", {"next": "/c/course/me/"})  # box unticked
    upload(track, bob)
    assert notifications.send_result_emails(base_url="http://arena.test") == 1
    assert mail.outbox[0].to == ["ann@uni.edu"]
    assert "93.00%" in mail.outbox[0].body and "http://arena.test/c/course/me/" in mail.outbox[0].body
    assert notifications.send_result_emails() == 0  # never twice
    assert Notice.objects.count() == 1
