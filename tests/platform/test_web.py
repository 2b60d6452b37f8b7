"""The web pages through Django's test client: who sees which competition and split, the
leaderboard's rows, tabs and chart, the student page and its upload form (the real service)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from submissions import lifecycle
from submissions.models import Status, Submission
from submissions.services import submit
from tests.evaluator.model_zoo import BAD_MODELS, GOOD_MODELS
from tests.platform.helpers import scorecard

pytestmark = pytest.mark.django_db


def scored(competition, user, *, track="mnist", baseline=False, name="model.onnx",
           model="mnist_linear", **card) -> Submission:
    """A submission through the real upload service, then scored with ``card`` (no worker)."""
    submission = submit(competition.tracks.get(slug=track), user, [GOOD_MODELS[model]()],
                        label=name, as_baseline=baseline)
    token = lifecycle.claim(submission.pk)
    lifecycle.record_scorecard(submission.pk, token, scorecard(**card))
    submission.refresh_from_db()
    return submission


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def board_rows(html: str) -> list[tuple[str, str]]:
    """(rank cell, username) of each leaderboard row, in page order."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r'<tr class="[^"]*" data-submission="\d+" data-username="([^"]+)">\s*'
                      r"<td>(.*?)</td>", body, re.S)
    return [(re.sub(r"<[^>]+>", "", rank).strip(), name) for name, rank in rows]


def test_home_lists_public_competitions_and_hides_unlisted(competition, unlisted, make_user):
    anonymous = Client().get("/").content.decode()
    assert "Course competition" in anonymous and "Invitation only" not in anonymous
    assert 'href="/c/course/"' in anonymous
    student = logged_in(make_user("ann")).get("/").content.decode()
    assert "Invitation only" not in student
    organizer = logged_in(unlisted.organizers.get()).get("/").content.decode()
    assert "Invitation only" in organizer and "Unlisted" in organizer


def test_anonymous_sees_public_leaderboards_only(competition, unlisted):
    client = Client()
    assert client.get("/c/course/").status_code == 200
    assert client.get("/c/secret/").status_code == 404
    assert client.get("/c/secret/panel/").status_code == 404
    missing = client.get("/c/nowhere/")
    assert missing.status_code == 404 and "Unlisted competitions are visible only" in (
        missing.content.decode())


def test_leaderboard_ranks_marks_baselines_and_never_ranks_over_limit(competition, make_user):
    teacher = competition.organizers.get()
    ann, bob, cat = make_user("ann"), make_user("bob"), make_user("cat")
    scored(competition, ann, accuracy=0.91)
    scored(competition, bob, accuracy=0.95, model="mnist_cnn")
    scored(competition, cat, accuracy=0.99, latency_ms=250.0)  # over the 100 ms limit
    scored(competition, teacher, baseline=True, name="teacher-cnn.onnx", accuracy=0.97)
    html = Client().get("/c/course/", {"track": "mnist"}).content.decode()
    assert board_rows(html) == [("Baseline", "teacher"), ("1", "bob"), ("2", "ann")]
    assert "teacher-cnn.onnx" in html and 'class="baseline"' in html
    assert "cat" not in board_rows(html).__repr__()
    assert "95.00%" in html and "91.00%" in html and "99.00%" not in html
    # The chart plots the three eligible models, the front among them, with size as radius.
    chart = html.split("<figure", 1)[1]
    assert len(re.findall(r'<circle class="point', chart.split("<figcaption>")[0])) == 3
    assert 'class="point on-front' in chart  # the Pareto front is highlighted
    assert "Download results" not in html  # organizer tools stay hidden from anonymous users


def test_tabs_choose_category_track_and_the_panel_refreshes_alone(competition, make_user):
    ann = make_user("ann")
    scored(competition, ann, accuracy=0.40)  # under the 0.5 floor: accuracy board only
    page = Client().get("/c/course/", {"category": "speed"}).content.decode()
    assert re.search(r'id="tab-category-speed"[^>]*aria-selected="true"', page)
    assert re.search(r'id="tab-category-accuracy"[^>]*aria-selected="false"[^>]*tabindex="-1"',
                     page)
    assert 'aria-sort="ascending">Latency' in page
    assert "No eligible submissions yet." in page
    panel = Client().get("/c/course/panel/", {"category": "accuracy"}).content.decode()
    assert "<html" not in panel and board_rows(panel) == [("1", "ann")]
    assert 'aria-sort="descending">Accuracy' in panel
    tinygpt = Client().get("/c/course/panel/", {"track": "tinygpt"}).content.decode()
    assert "Bits/char" in tinygpt and "No eligible submissions yet." in tinygpt
    assert Client().get("/c/course/", {"category": "fame"}).status_code == 404
    assert Client().get("/c/course/panel/", {"track": "nope"}).status_code == 404


def test_private_split_is_hidden_until_the_deadline(competition, make_user):
    ann = make_user("ann")
    teacher = competition.organizers.get()
    scored(competition, ann, accuracy=0.9123, private_accuracy=0.9731)
    for client in (Client(), logged_in(ann)):
        html = client.get("/c/course/", {"split": "private"}).content.decode()
        assert "91.23%" in html and "97.31%" not in html
        assert "revealed after the deadline" in html and 'id="tab-split-private"' not in html
        panel = client.get("/c/course/panel/", {"split": "private"}).content.decode()
        assert "97.31%" not in panel
    organizer = logged_in(teacher).get("/c/course/", {"split": "private"}).content.decode()
    assert "97.31%" in organizer and 'id="tab-split-private"' in organizer
    assert "/api/competitions/course/results.csv" in organizer  # the CSV export link
    competition.start = timezone.now() - timedelta(days=3)
    competition.deadline = timezone.now() - timedelta(seconds=1)
    competition.save()
    assert "97.31%" in Client().get("/c/course/", {"split": "private"}).content.decode()


def test_student_page_requires_login(competition):
    response = Client().get("/c/course/me/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/c/course/me/")
    assert Client().post("/c/course/me/").status_code == 302
    login = Client().get(response["Location"]).content.decode()
    assert '<label for="id_username">Username</label>' in login


def test_login_form_logs_a_student_in(competition):
    from accounts.services import create_user

    create_user("ann", password="a-long-password")
    client = Client()
    response = client.post("/accounts/login/", {"username": "ann", "password": "a-long-password",
                                                "next": "/c/course/me/"})
    assert response.status_code == 302 and response["Location"] == "/c/course/me/"
    assert "Signed in as <strong>ann</strong>" in client.get("/c/course/me/").content.decode()
    wrong = Client().post("/accounts/login/", {"username": "ann", "password": "nope"})
    assert wrong.status_code == 200 and 'role="alert"' in wrong.content.decode()


def test_upload_form_goes_through_the_submissions_service(competition, make_user):
    ann = make_user("ann")
    client = logged_in(ann)
    model = GOOD_MODELS["mnist_cnn"]()
    response = client.post("/c/course/me/", {"track": "mnist",
                                            "file": SimpleUploadedFile("cnn.onnx", model)})
    assert response.status_code == 302 and response["Location"] == "/c/course/me/"
    submission = Submission.objects.get(user=ann)
    assert (submission.status, submission.label, submission.track.slug) == (
        Status.QUEUED, "cnn.onnx", "mnist")
    assert submission.validation_report["ok"] and len(submission.sha256) == 64
    assert competition.is_participant(ann)  # the first upload joined the competition
    page = client.get("/c/course/me/").content.decode()
    assert "cnn.onnx was received and is queued for scoring." in page
    assert f'data-submission="{submission.pk}" data-status="queued"' in page
    assert 'data-in-progress="true"' in page


def test_upload_answers_the_pages_script_in_json(competition, make_user):
    client = logged_in(make_user("ann"))
    json_accept = {"HTTP_ACCEPT": "application/json"}
    good = client.post("/c/course/me/", {"track": "mnist", "file": SimpleUploadedFile(
        "cnn.onnx", GOOD_MODELS["mnist_cnn"]())}, **json_accept)
    assert good.status_code == 201 and good.json()["status"] == "queued" and good.json()["ok"]
    bad = client.post("/c/course/me/", {"track": "mnist", "file": SimpleUploadedFile(
        "junk.onnx", BAD_MODELS["garbage_bytes"]())}, **json_accept)
    body = bad.json()
    assert bad.status_code == 201 and body["status"] == "rejected"
    assert body["message"].startswith("junk.onnx was rejected. REJECTED for task 'mnist'")
    missing = client.post("/c/course/me/", {"track": "mnist"}, **json_accept)
    assert missing.status_code == 400 and missing.json()["message"] == (
        "Choose an .onnx file to upload.")
    wrong_track = client.post("/c/course/me/", {"track": "nope", "file": SimpleUploadedFile(
        "cnn.onnx", b"x")}, **json_accept)
    assert wrong_track.status_code == 400 and "Choose one of the tracks" in wrong_track.json()[
        "message"]


def test_upload_refusals_and_quota_are_told_in_words(competition, closed, make_user):
    ann = make_user("ann")
    client = logged_in(ann)
    json_accept = {"HTTP_ACCEPT": "application/json"}
    model = GOOD_MODELS["mnist_linear"]()
    for _ in range(3):  # the fixture's daily limit
        assert client.post("/c/course/me/", {"track": "mnist", "file": SimpleUploadedFile(
            "m.onnx", model)}, **json_accept).status_code == 201
    over = client.post("/c/course/me/", {"track": "mnist", "file": SimpleUploadedFile(
        "m.onnx", model)}, **json_accept)
    assert over.status_code == 429 and "submissions for the last 24 hours" in over.json()[
        "message"]
    shut = client.post("/c/over/me/", {"track": "mnist", "file": SimpleUploadedFile(
        "m.onnx", model)})
    assert shut.status_code == 302
    page = client.get("/c/over/me/").content.decode()
    assert "is closed" in page and "This competition is closed" in page


def test_student_page_shows_own_scores_and_readable_errors(competition, make_user):
    ann, bob = make_user("ann"), make_user("bob")
    mine = scored(competition, ann, name="small.onnx", accuracy=0.9421, private_accuracy=0.9555,
                  latency_ms=1.5, size_bytes=42_000)
    slow = scored(competition, ann, name="slow.onnx", latency_ms=250.0)
    rejected = submit(competition.tracks.get(slug="mnist"), ann, [BAD_MODELS["garbage_bytes"]()],
                      label="junk.onnx")
    theirs = scored(competition, bob, name="bobs.onnx", accuracy=0.99)
    panel = logged_in(ann).get("/c/course/me/panel/").content.decode()
    assert "<html" not in panel
    assert "small.onnx" in panel and "94.21%" in panel and "1.50 ms" in panel
    assert "42.0 kB" in panel and "95.55%" not in panel  # private accuracy hidden before deadline
    assert f'data-submission="{slow.pk}" data-status="over_limit"' in panel
    assert "Scored, but not ranked:" in panel and "latency 250.00 ms is over the limit" in panel
    assert f'data-submission="{rejected.pk}" data-status="rejected"' in panel
    assert "Why it was rejected:" in panel and "REJECTED for task &#x27;mnist&#x27;" in panel
    assert "bobs.onnx" not in panel and f'data-submission="{theirs.pk}"' not in panel
    assert 'data-in-progress="false"' in panel
    assert mine.status == Status.SCORED


def test_pages_have_landmarks_labels_and_local_assets_only(competition, make_user):
    client = logged_in(make_user("ann"))
    for url in ("/", "/c/course/", "/c/course/me/", "/accounts/login/"):
        html = client.get(url).content.decode()
        assert '<html lang="en">' in html and '<main id="main"' in html
        assert '<nav aria-label="Site">' in html and 'name="viewport"' in html
        assert not re.search(r'(src|href)="(https?:)?//', html), url  # nothing from elsewhere
    student = client.get("/c/course/me/").content.decode()
    assert '<label for="id_file">' in student and '<label for="id_track">' in student
    assert 'role="status" aria-live="polite"' in student
    assert client.get("/static/web/arena.js").status_code == 200
    assert client.get("/static/web/arena.css").status_code == 200


def test_cached_panel_never_carries_the_private_split_to_others(competition, make_user):
    ann = make_user("ann")
    scored(competition, ann, accuracy=0.9123, private_accuracy=0.9731)
    teacher = logged_in(competition.organizers.get())
    assert "97.31%" in teacher.get("/c/course/panel/", {"split": "private"}).content.decode()
    for client in (Client(), logged_in(ann)):  # right after, from the render cache
        assert "97.31%" not in client.get("/c/course/panel/", {"split": "private"}).content.decode()
        assert "97.31%" not in client.get("/c/course/", {"split": "private"}).content.decode()


def test_student_page_shows_the_students_own_api_token(competition, make_user):
    ann = make_user("ann")
    page = logged_in(ann).get("/c/course/me/").content.decode()
    assert f"<code data-token>{ann.api_token}</code>" in page
    assert "http://testserver/api/submissions/" in page


def test_organizer_links_open_the_admin_filtered_to_the_competition(competition, unlisted,
                                                                   make_user):
    scored(competition, make_user("ann"), name="anns.onnx")
    scored(unlisted, unlisted.organizers.get(), baseline=True)  # another competition's
    teacher = logged_in(competition.organizers.get())
    page = teacher.get("/c/course/").content.decode()
    links = re.findall(r'href="(/admin/[^"]+)"', page)
    assert len(links) == 2
    for link in links:
        response = teacher.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, link
    submissions = teacher.get(links[1].replace("&amp;", "&")).content.decode()
    assert "1 submission" in submissions  # the admin's count line: the filter took


def test_long_boards_are_paged(competition, make_user, monkeypatch):
    monkeypatch.setattr("web.leaderboard.ROWS_SHOWN", 2)
    for name, accuracy in (("ann", 0.91), ("bob", 0.93), ("cat", 0.95)):
        scored(competition, make_user(name), accuracy=accuracy)
    first = Client().get("/c/course/").content.decode()
    assert board_rows(first) == [("1", "cat"), ("2", "bob")]
    assert "Rows 1–2" in first and "Previous rows" not in first
    next_link = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = Client().get(next_link).content.decode()
    assert board_rows(second) == [("3", "ann")]
    assert "Rows 3–3" in second and 'rel="next"' not in second and 'rel="prev"' in second
    # Switching tabs starts again at the first page.
    assert re.search(r'id="tab-category-speed" href="[^"]*page=1"', second)
    assert Client().get("/c/course/", {"page": "two"}).status_code == 404


def test_form_uploads_share_the_apis_upload_rate(competition, make_user, monkeypatch):
    from web.views import UploadThrottle

    from tests.platform.helpers import client_for

    monkeypatch.setattr(UploadThrottle, "THROTTLE_RATES", {"uploads": "2/min"})
    ann = make_user("ann")
    page = logged_in(ann)
    json_accept = {"HTTP_ACCEPT": "application/json"}
    model = GOOD_MODELS["mnist_linear"]()
    first = page.post("/c/course/me/", {"track": "mnist", "file": SimpleUploadedFile(
        "m.onnx", model)}, **json_accept)
    assert first.status_code == 201
    api = client_for(ann).post("/api/submissions/", {
        "file": SimpleUploadedFile("m.onnx", model), "competition": "course", "track": "mnist"},
        format="multipart")
    assert api.status_code == 201
    third = page.post("/c/course/me/", {"track": "mnist", "file": SimpleUploadedFile(
        "m.onnx", model)}, **json_accept)
    assert third.status_code == 429 and third.json()["message"].startswith(
        "Too many uploads in a short time")
    assert Submission.objects.filter(user=ann).count() == 2
