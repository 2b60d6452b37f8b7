"""The REST API: uploads through the real validation gate, quotas, who may see what."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from competitions.models import Track
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from submissions import lifecycle
from submissions.models import Status, Submission
from tests.evaluator.model_zoo import BAD_MODELS, GOOD_MODELS
from tests.platform.helpers import client_for, distinct, scorecard

pytestmark = pytest.mark.django_db


def upload(user, model: bytes, competition="course", track="mnist", name="model.onnx", **extra):
    data = {"file": SimpleUploadedFile(name, model), "competition": competition, "track": track}
    data.update(extra)
    return client_for(user).post("/api/submissions/", data, format="multipart")


def score_now(submission_id: int, **card) -> str:
    """Walk a queued submission through the lifecycle with a scorecard (no worker)."""
    token = lifecycle.claim(submission_id)
    assert token is not None
    return lifecycle.record_scorecard(submission_id, token, scorecard(**card))


def test_valid_upload_is_validated_at_once_and_queued(competition, make_user):
    ann = make_user("ann")
    response = upload(ann, GOOD_MODELS["mnist_linear"]())
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert body["validation_report"]["ok"] is True
    assert body["username"] == "ann" and body["track"] == "mnist"
    assert "artifact_path" not in body and "file" not in body  # no way to the stored file
    assert competition.is_participant(ann)  # a first upload to a public competition joins it


def test_an_identical_upload_answers_200_with_the_earlier_submission(competition, make_user):
    ann = make_user("ann")
    model = GOOD_MODELS["mnist_linear"]()
    first = upload(ann, model)
    assert first.status_code == 201 and "duplicate" not in first.json()
    again = upload(ann, model)
    assert again.status_code == 200, again.content
    assert again.json()["id"] == first.json()["id"] and again.json()["duplicate"] is True
    assert Submission.objects.filter(user=ann).count() == 1


def test_invalid_upload_is_rejected_with_reasons_in_words(competition, make_user):
    response = upload(make_user("ann"), BAD_MODELS["custom_domain_op"]())
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "rejected"
    assert "REJECTED" in body["error"] and body["validation_report"]["problems"]
    garbage = upload(make_user("bob"), BAD_MODELS["garbage_bytes"]()).json()
    assert garbage["status"] == "rejected" and garbage["error"]


def test_wrong_task_model_is_rejected(competition, make_user):
    body = upload(make_user("ann"), GOOD_MODELS["mnist_linear"](), track="tinygpt").json()
    assert body["status"] == "rejected"


def test_upload_refusals_speak_plainly(competition, closed, unlisted, make_user):
    ann = make_user("ann")
    model = GOOD_MODELS["mnist_linear"]()
    response = upload(ann, model, competition="over")
    assert response.status_code == 403 and "closed" in response.json()["detail"]
    assert upload(ann, model, competition="secret").status_code == 404  # unlisted stays unknown
    response = upload(ann, model, track="cifar10")
    assert response.status_code == 400 and "mnist" in str(response.json())
    assert upload(ann, b"", name="empty.onnx").status_code == 400
    assert client_for().post("/api/submissions/", {}).status_code in (401, 403)


def test_daily_quota_counts_accepted_but_not_failed_or_rejected(competition, make_user):
    ann = make_user("ann")
    models = (distinct(GOOD_MODELS["mnist_linear"](), n) for n in range(100))
    assert upload(ann, BAD_MODELS["garbage_bytes"]()).json()["status"] == "rejected"
    first = [upload(ann, next(models)).json()["id"] for _ in range(3)]
    refused = upload(ann, next(models))
    assert refused.status_code == 429
    assert "3 submissions for the last 24 hours" in refused.json()["detail"]
    assert refused.json()["retry_at"]
    # A platform failure gives the slot back.
    Submission.objects.filter(pk=first[0]).update(status=Status.FAILED)
    assert upload(ann, next(models)).status_code == 201
    assert upload(ann, next(models)).status_code == 429
    # The window rolls: a submission older than 24 hours no longer counts.
    Submission.objects.filter(pk=first[1]).update(created_at=timezone.now() - timedelta(hours=25))
    assert upload(ann, next(models)).status_code == 201


def test_total_quota(competition, make_user):
    Track.objects.filter(competition=competition, slug="mnist").update(total_limit=2, daily_limit=9)
    ann = make_user("ann")
    model = GOOD_MODELS["mnist_linear"]()
    assert [upload(ann, distinct(model, n)).status_code for n in range(3)] == [201, 201, 429]
    assert "all 2 submissions" in upload(ann, distinct(model, 3)).json()["detail"]


def test_rejected_uploads_have_their_own_cap(competition, make_user):
    ann = make_user("ann")
    bad = BAD_MODELS["garbage_bytes"]()
    assert [upload(ann, bad + bytes([n])).json()["status"] for n in range(2)] == [
        "rejected", "rejected"]
    refused = upload(ann, bad + b"\x02")
    assert refused.status_code == 429 and "rejected uploads" in refused.json()["detail"]
    # ... which blocks good files too until the window passes: nobody floods the queue.
    assert upload(ann, GOOD_MODELS["mnist_linear"]()).status_code == 429
    assert Submission.objects.filter(user=ann).count() == 2


def test_students_see_only_their_own_submissions(competition, make_user):
    ann, bob = make_user("ann"), make_user("bob")
    mine = upload(ann, GOOD_MODELS["mnist_linear"]()).json()["id"]
    assert client_for(ann).get(f"/api/submissions/{mine}/").status_code == 200
    assert client_for(bob).get(f"/api/submissions/{mine}/").status_code == 404
    assert client_for(bob).get("/api/submissions/").json() == []
    assert [s["id"] for s in client_for(ann).get("/api/submissions/").json()] == [mine]
    assert client_for().get(f"/api/submissions/{mine}/").status_code in (401, 403)
    # The organizer may look at it (never at the file: no endpoint serves artifacts).
    teacher = competition.organizers.get()
    teacher.api_token = teacher.auth_token.key
    assert client_for(teacher).get(f"/api/submissions/{mine}/").status_code == 200
    assert client_for(ann).get(f"/api/submissions/{mine}/file/").status_code == 404


def test_leaderboard_ranks_and_hides_private_split_until_deadline(competition, make_user):
    ann, bob = make_user("ann"), make_user("bob")
    a = upload(ann, GOOD_MODELS["mnist_linear"]()).json()["id"]
    b = upload(bob, GOOD_MODELS["mnist_cnn"]()).json()["id"]
    assert score_now(a, accuracy=0.91, private_accuracy=0.97) == "scored"
    assert score_now(b, accuracy=0.95, private_accuracy=0.90) == "scored"
    url = "/api/competitions/course/leaderboard/"
    rows = client_for().get(url, {"track": "mnist"}).json()["rows"]
    assert [(r["rank"], r["username"], r["submission_id"]) for r in rows] == [(1, "bob", b),
                                                                              (2, "ann", a)]
    assert rows[0]["accuracy"] == 0.95 and rows[0]["size_bytes"] == 30_000
    # Private split: hidden from students and anonymous users, shown to organizers.
    assert client_for(ann).get(url, {"split": "private"}).status_code == 403
    assert client_for().get(url, {"split": "private"}).status_code == 403
    teacher = competition.organizers.get()
    teacher.api_token = teacher.auth_token.key
    private = client_for(teacher).get(url, {"split": "private"}).json()["rows"]
    assert [r["username"] for r in private] == ["ann", "bob"]
    detail = client_for(ann).get(f"/api/submissions/{a}/").json()
    assert set(detail["scores"]["splits"]) == {"public"} and detail["scores"]["private_hidden"]
    # After the deadline everyone sees it.
    competition.start = timezone.now() - timedelta(days=3)
    competition.deadline = timezone.now() - timedelta(seconds=1)
    competition.save()
    assert client_for().get(url, {"split": "private"}).status_code == 200
    detail = client_for(ann).get(f"/api/submissions/{a}/").json()
    assert detail["scores"]["splits"]["private"]["accuracy"] == 0.97


def test_a_cached_leaderboard_page_is_never_served_after_a_new_score(competition, make_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ann, bob = make_user("ann"), make_user("bob")
    url = "/api/competitions/course/leaderboard/"
    a = upload(ann, GOOD_MODELS["mnist_linear"]()).json()["id"]
    score_now(a, accuracy=0.91)
    assert [r["username"] for r in client_for().get(url).json()["rows"]] == ["ann"]
    with CaptureQueriesContext(connection) as cached:
        assert [r["username"] for r in client_for().get(url).json()["rows"]] == ["ann"]
    assert not any("leaderboards_leaderboardentry" in q["sql"] for q in cached.captured_queries)
    b = upload(bob, GOOD_MODELS["mnist_cnn"]()).json()["id"]
    score_now(b, accuracy=0.95)
    assert [r["username"] for r in client_for().get(url).json()["rows"]] == ["bob", "ann"]


def test_leaderboard_categories_and_bad_parameters(competition, make_user):
    ann = make_user("ann")
    a = upload(ann, GOOD_MODELS["mnist_linear"]()).json()["id"]
    score_now(a, accuracy=0.4)  # below the 0.5 floor: ranked for accuracy only
    url = "/api/competitions/course/leaderboard/"
    assert len(client_for().get(url, {"category": "accuracy"}).json()["rows"]) == 1
    assert client_for().get(url, {"category": "speed"}).json()["rows"] == []
    assert len(client_for().get(url, {"category": "pareto"}).json()["rows"]) == 1
    response = client_for().get(url, {"category": "fame"})
    assert response.status_code == 400 and "unknown category" in response.json()["detail"]
    assert client_for().get(url, {"track": "nope"}).status_code == 404


def test_over_limit_is_shown_to_its_owner_but_never_ranked(competition, make_user):
    ann = make_user("ann")
    a = upload(ann, GOOD_MODELS["mnist_linear"]()).json()["id"]
    assert score_now(a, latency_ms=250.0) == "over_limit"
    body = client_for(ann).get(f"/api/submissions/{a}/").json()
    assert body["status"] == "over_limit" and "latency" in body["error"]
    assert body["scores"]["over_limit"]
    rows = client_for().get("/api/competitions/course/leaderboard/").json()["rows"]
    assert rows == []


def test_baselines_are_marked_and_unranked(competition, make_user):
    ann = make_user("ann")
    teacher = competition.organizers.get()
    teacher.api_token = teacher.auth_token.key
    response = upload(teacher, GOOD_MODELS["mnist_cnn"](), baseline="true", name="cnn.onnx")
    assert response.status_code == 201 and response.json()["is_baseline"]
    assert upload(ann, GOOD_MODELS["mnist_cnn"](), baseline="true").status_code == 403
    a = upload(ann, GOOD_MODELS["mnist_linear"]()).json()["id"]
    score_now(response.json()["id"], accuracy=0.99)
    score_now(a, accuracy=0.9)
    rows = client_for().get("/api/competitions/course/leaderboard/").json()["rows"]
    assert [(r["rank"], r["is_baseline"], r["label"]) for r in rows] == [(None, True, "cnn.onnx"),
                                                                         (1, False, "")]


def test_anonymous_users_see_only_public_competitions(competition, unlisted, make_user):
    slugs = [c["slug"] for c in client_for().get("/api/competitions/").json()]
    assert slugs == ["course"]
    assert client_for().get("/api/competitions/secret/").status_code == 404
    assert client_for().get("/api/competitions/secret/leaderboard/").status_code == 404
    ann = make_user("ann")
    assert client_for(ann).get("/api/competitions/secret/leaderboard/").status_code == 404
    assert client_for(ann).post("/api/competitions/secret/join/").status_code == 404
    unlisted.participations.create(user=ann)
    assert client_for(ann).get("/api/competitions/secret/leaderboard/").status_code == 200
    assert {c["slug"] for c in client_for(ann).get("/api/competitions/").json()} == {"course",
                                                                                     "secret"}
    detail = client_for().get("/api/competitions/course/").json()
    assert [t["slug"] for t in detail["tracks"]] == ["mnist", "tinygpt"]
    assert detail["tracks"][0]["max_size_bytes"] == 10_000_000


def test_results_csv_for_organizers_only(competition, make_user):
    ann = make_user("ann")
    a = upload(ann, GOOD_MODELS["mnist_linear"]()).json()["id"]
    score_now(a, accuracy=0.9, private_accuracy=0.8)
    teacher = competition.organizers.get()
    teacher.api_token = teacher.auth_token.key
    url = "/api/competitions/course/results.csv"
    assert client_for(ann).get(url).status_code == 403
    assert client_for().get(url).status_code in (401, 403)
    response = client_for(teacher).get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    # accuracy, speed, size, efficiency on both splits
    assert {(r["split"], r["category"]) for r in rows} == {
        (s, c) for s in ("public", "private") for c in ("accuracy", "speed", "size", "efficiency")}
    private = next(r for r in rows if r["split"] == "private" and r["category"] == "accuracy")
    assert private["username"] == "ann" and float(private["accuracy"]) == 0.8


def test_schema_is_served(db):
    response = client_for().get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/submissions/" in response.content and b"leaderboard" in response.content


def test_anonymous_requests_are_throttled(competition, monkeypatch):
    from django.conf import settings
    from rest_framework.throttling import AnonRateThrottle

    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anon"]  # on by default
    monkeypatch.setitem(AnonRateThrottle.THROTTLE_RATES, "anon", "5/min")
    client = client_for()
    codes = [client.get("/api/competitions/").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]


def test_a_spoofed_forwarded_address_does_not_escape_the_throttle(competition, monkeypatch):
    from rest_framework.throttling import AnonRateThrottle

    monkeypatch.setitem(AnonRateThrottle.THROTTLE_RATES, "anon", "5/min")
    client = client_for()
    codes = [
        client.get("/api/competitions/", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code
        for n in range(6)
    ]
    assert codes == [200] * 5 + [429]


def test_an_oversized_upload_is_refused_in_words(competition, make_user, settings):
    settings.ARENA_MAX_UPLOAD_BYTES = 1000
    response = upload(make_user("ann"), b"x" * 5000)
    assert response.status_code == 413 and "upload limit" in response.json()["detail"]
    assert Submission.objects.count() == 0


def test_leaderboard_and_csv_carry_ties_normalized_latency_and_the_hardware_class(competition,
                                                                                  make_user):
    from hardware.models import HardwareClass

    HardwareClass.objects.create(name="x86_64-avx2", cpu_model="AMD EPYC 7B13", cpu_count=2,
                                 cpu_features=["avx2"], calibration={"mnist": 4.0})
    ann, bob, cat = make_user("ann"), make_user("bob"), make_user("cat")
    on_avx2 = {"provenance": {"hardware_class": "x86_64-avx2"}}
    for who, index, ci, raw in ((ann, 2.0, [1.9, 2.1], 2.5), (bob, 1.95, [1.8, 2.0], 2.0),
                                (cat, 1.0, [0.98, 1.02], 1.5)):
        sid = upload(who, GOOD_MODELS["mnist_linear"]()).json()["id"]
        assert score_now(sid, latency_ms=raw, speed_index=index, speed_index_ci=ci,
                         **on_avx2) == "scored"
    url = "/api/competitions/course/leaderboard/"
    body = client_for().get(url, {"category": "speed"}).json()
    assert [(r["username"], r["rank"], r["tied"]) for r in body["rows"]] == [
        ("ann", 1, True), ("bob", 1, True), ("cat", 3, False)]
    ann_row = body["rows"][0]
    assert ann_row["latency_ms"] == 2.5 and ann_row["normalized_latency_ms"] == 2.0  # 4 / 2
    assert ann_row["normalized_latency_low_ms"] == pytest.approx(4 / 2.1)
    assert ann_row["normalized_latency_high_ms"] == pytest.approx(4 / 1.9)
    assert (ann_row["speed_index_low"], ann_row["speed_index_high"]) == (1.9, 2.1)
    assert body["hardware"] == {"name": "x86_64-avx2", "default": True, "cpu_model": "AMD EPYC 7B13",
                                "cpu_features": ["avx2"], "cpu_count": 2,
                                "reference_latency_ms": 4.0}
    # The track moves to a class no worker has reported: the API says so at once (not cached).
    Track.objects.filter(slug="mnist").update(hardware_class="aarch64-dotprod")
    moved = client_for().get(url, {"category": "speed"}).json()["hardware"]
    assert moved["name"] == "aarch64-dotprod" and not moved["default"] and moved["cpu_model"] == ""
    track = client_for().get("/api/competitions/course/").json()["tracks"][0]
    assert track["hardware_class"] == "aarch64-dotprod"
    Track.objects.filter(slug="mnist").update(hardware_class="x86_64-avx2")

    teacher = competition.organizers.get()
    teacher.api_token = teacher.auth_token.key
    response = client_for(teacher).get("/api/competitions/course/results.csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    speed = [r for r in rows if r["split"] == "public" and r["category"] == "speed"]
    assert [(r["username"], r["rank"], r["tied"]) for r in speed] == [
        ("ann", "1", "True"), ("bob", "1", "True"), ("cat", "3", "False")]
    assert {(r["hardware_class"], r["cpu_model"], r["cpu_features"]) for r in rows} == {
        ("x86_64-avx2", "AMD EPYC 7B13", "avx2")}
    assert float(speed[0]["normalized_latency_ms"]) == 2.0 and float(speed[0]["latency_ms"]) == 2.5
    assert float(speed[2]["speed_index"]) == 1.0 and speed[2]["speed_index_high"] == "1.02"
    mnist_accuracy = next(r for r in rows if r["category"] == "accuracy" and r["split"] == "public")
    assert mnist_accuracy["tied"] == "False"  # only speed has intervals


def test_old_scorecards_without_intervals_still_rank_and_export(competition, make_user):
    ann, bob = make_user("ann"), make_user("bob")
    for who, raw in ((ann, 4.0), (bob, 2.0)):
        sid = upload(who, GOOD_MODELS["mnist_linear"]()).json()["id"]
        assert score_now(sid, latency_ms=raw, speed_index_ci=None) == "scored"
    rows = client_for().get("/api/competitions/course/leaderboard/",
                            {"category": "speed"}).json()["rows"]
    assert [(r["username"], r["rank"], r["tied"], r["normalized_latency_ms"]) for r in rows] == [
        ("bob", 1, False, None), ("ann", 2, False, None)]
    body = client_for().get("/api/competitions/course/leaderboard/").json()
    assert body["hardware"]["name"] == ""  # no worker has reported a class yet
