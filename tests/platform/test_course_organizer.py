"""Issue 12's organizer pages and results: set-up with the command line's checks, every
submission with filters and its scorecard, hiding, extensions, re-scoring from the browser, the
results page after the deadline and the LMS grade CSV; and who may see which of them."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from competitions.models import Competition
from competitions.services import create_competition
from coursework.models import Extension
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from submissions.models import Rescore
from tests.platform.test_course_rules import close, upload

pytestmark = pytest.mark.django_db
ORGANIZER_PAGES = ["/c/{slug}/organize/", "/c/{slug}/organize/submissions/",
                   "/c/{slug}/organize/extensions/", "/c/{slug}/organize/enrollment/",
                   "/c/{slug}/organize/tracks/mnist/", "/c/{slug}/results/grades.csv"]


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_organizer_pages_are_unknown_to_everyone_else(competition, make_user):
    ann = make_user("ann")
    sub = upload(competition.tracks.get(slug="mnist"), ann)
    other = make_user("other", "instructor")  # an instructor, but not of this competition
    for who in (Client(), browser(ann), browser(other)):
        for page in [*ORGANIZER_PAGES, f"/c/{{slug}}/organize/submissions/{sub.pk}/"]:
            response = who.get(page.format(slug="course"))
            assert response.status_code in (302, 404), (page, response.status_code)
            if response.status_code == 302:
                assert response["Location"].startswith("/accounts/login/")
    assert browser(ann).get("/organize/new/").status_code == 404
    assert browser(ann).post(f"/c/course/organize/submissions/{sub.pk}/",
                             {"reason": "x", "action": "hide"}).status_code == 404


def test_an_instructor_sets_up_a_competition_with_the_command_lines_checks(instructor):
    client = browser(instructor)
    start = timezone.now().replace(microsecond=0)
    form = {"slug": "cs1", "title": "CS 1", "description": "", "visibility": "unlisted",
            "start": start.strftime("%Y-%m-%dT%H:%M"), "tasks": ["mnist", "cifar10"],
            "deadline": (start - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            "reveal_private_after_deadline": "on"}
    refused = client.post("/organize/new/", form)
    assert refused.status_code == 400
    assert "The deadline must come after the start." in refused.content.decode()
    form["deadline"] = (start + timedelta(days=14)).strftime("%Y-%m-%dT%H:%M")
    assert client.post("/organize/new/", form)["Location"] == "/c/cs1/organize/"
    cs1 = Competition.objects.get(slug="cs1")
    assert cs1.is_organizer(instructor) and not cs1.is_public
    assert sorted(cs1.tracks.values_list("slug", flat=True)) == ["cifar10", "mnist"]
    # A track's limits: the same words as the command line for a bad floor.
    track = {"t-slug": "mnist", "t-task": "mnist", "t-max_size_bytes": "5000000",
             "t-max_latency_ms": "20", "t-accuracy_floor": "90", "t-daily_limit": "4",
             "t-total_limit": "50", "t-rejected_daily_limit": "10"}
    bad = client.post("/c/cs1/organize/tracks/mnist/", track)
    assert bad.status_code == 400 and "fraction between 0 and 1" in bad.content.decode()
    track["t-accuracy_floor"] = "0.9"
    assert client.post("/c/cs1/organize/tracks/mnist/", track).status_code == 302
    mnist = cs1.tracks.get(slug="mnist")
    assert (mnist.max_latency_ms, mnist.accuracy_floor, mnist.daily_limit) == (20.0, 0.9, 4)
    with pytest.raises(CommandError, match="fraction between 0 and 1"):
        call_command("create_competition", "cs2", "--title", "x", "--tracks", "mnist",
                     "--accuracy-floor", "90")
    # Course rules on the set-up page.
    edit = {"c-slug": "cs1", "c-title": "CS 1 (fall)", "c-description": "",
            "c-visibility": "public", "c-start": start.strftime("%Y-%m-%dT%H:%M"),
            "c-deadline": form["deadline"], "c-reveal_private_after_deadline": "on",
            "p-final_picks": "1", "p-accept_late": "on"}
    assert client.post("/c/cs1/organize/", edit).status_code == 302
    cs1.refresh_from_db()
    assert cs1.title == "CS 1 (fall)" and cs1.course_policy.final_picks == 1
    assert cs1.course_policy.accept_late


def test_all_submissions_filtered_with_full_scorecards_and_hiding(competition, make_user,
                                                                  instructor):
    track = competition.tracks.get(slug="mnist")
    ann, bob = make_user("ann"), make_user("bob")
    a = upload(track, ann, accuracy=0.91)
    b = upload(track, bob, accuracy=0.92, latency_ms=500.0)  # over the limit
    client = browser(instructor)
    page = client.get("/c/course/organize/submissions/").content.decode()
    assert f'data-submission="{a.pk}"' in page and f'data-submission="{b.pk}"' in page
    page = client.get("/c/course/organize/submissions/?student=an&status=scored").content.decode()
    assert f'data-submission="{a.pk}"' in page and f'data-submission="{b.pk}"' not in page
    page = client.get("/c/course/organize/submissions/?status=over_limit").content.decode()
    assert f'data-submission="{b.pk}"' in page and f'data-submission="{a.pk}"' not in page
    detail = client.get(f"/c/course/organize/submissions/{a.pk}/").content.decode()
    assert "data-scorecard" in detail and "&quot;latency_mean_ms&quot;" in detail
    assert client.post(f"/c/course/organize/submissions/{a.pk}/",
                       {"action": "hide", "reason": ""}).status_code == 400
    client.post(f"/c/course/organize/submissions/{a.pk}/",
                {"action": "hide", "reason": "Copied from bob."})
    assert "Copied from bob." in client.get(f"/c/course/organize/submissions/{a.pk}/").content.decode()
    assert "hidden" in client.get("/c/course/organize/submissions/").content.decode()


def test_extensions_and_rescoring_from_the_browser(competition, make_user, instructor):
    from hardware.services import register

    register("x86_64-test")
    track = competition.tracks.get(slug="mnist")
    ann = make_user("ann")
    sub = upload(track, ann)
    client = browser(instructor)
    assert "not take part" in client.post("/c/course/organize/extensions/", {
        "username": "nobody", "extra_uploads": "1"}).content.decode()
    later = (timezone.now() + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M")
    client.post("/c/course/organize/extensions/", {"username": "ann", "deadline": later,
                                                   "extra_uploads": "2", "note": "ill"})
    granted = Extension.objects.get(user=ann)
    assert granted.extra_uploads == 2 and granted.deadline > competition.deadline
    client.post("/c/course/organize/tracks/mnist/rescore/")
    assert Rescore.objects.filter(submission=sub, state="queued").count() == 1
    page = client.get("/c/course/organize/tracks/mnist/").content.decode()
    assert "queued 1" in page
    client.post(f"/c/course/organize/submissions/{sub.pk}/", {"action": "rescore"})
    assert Rescore.objects.filter(submission=sub).count() == 1  # never twice while pending


def test_results_after_the_deadline_and_the_grade_csv(competition, make_user, instructor):
    track = competition.tracks.get(slug="mnist")
    ann, bob, cat = make_user("ann"), make_user("bob"), make_user("cat")
    ann.first_name, ann.last_name, ann.email = "Ann", "Lee", "ann@uni.edu"
    ann.save()
    upload(track, instructor, baseline=True, accuracy=0.85, private_accuracy=0.85)
    upload(track, ann, accuracy=0.95, private_accuracy=0.90)
    upload(track, bob, accuracy=0.93, private_accuracy=0.94, size_bytes=5_000)
    upload(track, cat, accuracy=0.80, private_accuracy=0.80)
    student = browser(ann)
    before = student.get("/c/course/results/").content.decode()
    assert "announced after the deadline" in before and "data-winner" not in before
    # The organizer sees the results before the deadline.
    assert 'data-winner="accuracy">bob' in browser(instructor).get(
        "/c/course/results/").content.decode()
    close(competition)
    page = student.get("/c/course/results/").content.decode()
    assert 'data-winner="accuracy">bob' in page and 'data-winner="size">bob' in page
    assert "▲ 1" in page and "▼ 1" in page  # bob up from 2nd, ann down from 1st
    assert "data-baselines" in page
    assert student.get("/c/course/results/grades.csv").status_code == 404
    response = browser(instructor).get(
        "/c/course/results/grades.csv?columns=best_accuracy&columns=accuracy_rank"
        "&columns=public_accuracy_rank&columns=beat_baseline")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Student", "SIS Login ID", "Email address",
                       "mnist best accuracy (private)", "mnist accuracy rank",
                       "mnist public accuracy rank", "mnist beat the baseline",
                       "tinygpt best accuracy (private)", "tinygpt accuracy rank",
                       "tinygpt public accuracy rank", "tinygpt beat the baseline"]
    by_login = {row[1]: row for row in rows[1:]}
    assert set(by_login) == {"ann", "bob", "cat"}  # one row per student, never the baseline
    assert by_login["ann"][:7] == ["Lee, Ann", "ann", "ann@uni.edu", "0.9", "2", "1", "yes"]
    assert by_login["bob"][3:7] == ["0.94", "1", "2", "yes"]
    assert by_login["cat"][6] == "no" and by_login["cat"][7:] == ["", "", "", ""]
    bad = browser(instructor).get("/c/course/results/grades.csv?columns=shoe_size")
    assert bad.status_code == 400


def test_unlisted_results_stay_unknown(instructor, make_user):
    start = timezone.now() - timedelta(days=3)
    create_competition("hush", "Hush", ["mnist"], organizers=[instructor], start=start,
                       deadline=start + timedelta(days=1),
                       visibility=Competition.Visibility.UNLISTED)
    assert browser(make_user("ann")).get("/c/hush/results/").status_code == 404


def test_bad_input_on_the_course_pages_is_answered_in_words_never_a_500(competition, instructor,
                                                                        make_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = browser(instructor)
    assert client.get("/c/course/organize/submissions/?status=nonsense&page=x").status_code == 400
    assert client.get("/c/course/organize/submissions/?page=999").status_code == 200
    assert client.get("/c/course/organize/submissions/999999/").status_code == 404
    assert client.get("/c/course/organize/tracks/nope/").status_code == 404
    binary = client.post("/c/course/organize/enrollment/", {
        "action": "import", "roster": SimpleUploadedFile("x.csv", b"\xff\xfe\x00bad")})
    assert binary.status_code == 400 and "not UTF-8" in binary.content.decode()
    empty = client.post("/c/course/organize/enrollment/", {
        "action": "import", "roster": SimpleUploadedFile("x.csv", b"\n")})
    assert empty.status_code == 400
    assert Client().get("/join/no-such-code/").status_code == 404
    assert Client().post("/join/", {"code": ""}).status_code == 400
    bad_track = client.post("/c/course/organize/tracks/new/", {"t-slug": "mnist",
                                                               "t-task": "nope"})
    assert bad_track.status_code == 400 and "already has a track" in bad_track.content.decode()
    bad_extension = client.post("/c/course/organize/extensions/", {
        "username": "ann", "extra_uploads": "-1"})
    assert bad_extension.status_code == 400
