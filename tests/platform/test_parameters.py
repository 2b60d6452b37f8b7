"""Every API and page parameter is checked before it reaches the database: a NUL byte (which
PostgreSQL refuses in text) or a value of the wrong kind is a 400 with a reason, never a 500."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.evaluator.model_zoo import GOOD_MODELS
from tests.platform.helpers import client_for

pytestmark = pytest.mark.django_db

NUL = "\x00"


@pytest.mark.parametrize("param", ["track", "category", "split", "limit", "offset"])
def test_a_nul_byte_in_a_leaderboard_parameter_is_a_400_with_a_reason(competition, param):
    response = client_for().get("/api/competitions/course/leaderboard/", {param: f"a{NUL}"})
    assert response.status_code == 400, response.content
    reason = response.json()["detail"]
    assert param in reason and ("Null characters" in reason or "whole number" in reason
                                or f"unknown {param}" in reason), reason


@pytest.mark.parametrize("param", ["competition", "track", "status"])
def test_a_nul_byte_in_a_submission_filter_is_a_400_with_a_reason(competition, make_user, param):
    response = client_for(make_user("ann")).get("/api/submissions/", {param: NUL})
    assert response.status_code == 400, response.content
    reason = response.json()["detail"]
    assert param in response.json() and ("Null characters" in reason or "unknown status" in reason)


def test_an_unknown_status_filter_is_a_400_naming_the_statuses(competition, make_user):
    response = client_for(make_user("ann")).get("/api/submissions/", {"status": "done"})
    assert response.status_code == 400 and "queued" in str(response.json()["status"])
    assert client_for(make_user("bob")).get("/api/submissions/",
                                            {"status": "queued"}).status_code == 200


@pytest.mark.parametrize("field", ["competition", "track"])
def test_a_nul_byte_in_an_upload_field_is_a_400(competition, make_user, field):
    data = {"file": SimpleUploadedFile("m.onnx", GOOD_MODELS["mnist_linear"]()),
            "competition": "course", "track": "mnist", field: f"course{NUL}"}
    response = client_for(make_user("ann")).post("/api/submissions/", data, format="multipart")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_a_nul_byte_in_a_page_parameter_is_a_400(competition, make_user):
    for url in ("/c/course/", "/c/course/panel/"):
        for param in ("track", "category", "split", "page"):
            response = Client().get(url, {param: NUL})
            assert response.status_code == 400, (url, param, response.status_code)
            assert b"null character" in response.content.lower()
    client = Client()
    client.force_login(make_user("ann"))
    response = client.post("/c/course/me/", {"track": f"mnist{NUL}", "file": SimpleUploadedFile(
        "m.onnx", GOOD_MODELS["mnist_linear"]())}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400 and response.json()["ok"] is False


def test_a_nul_byte_at_the_login_form_and_in_admin_search_is_not_a_500(competition, instructor):
    login = Client().post("/accounts/login/", {"username": f"ann{NUL}", "password": "x"})
    assert login.status_code in (200, 400)
    client = Client()
    client.force_login(instructor)
    for url in ("/admin/competitions/competition/", "/admin/competitions/participation/",
                "/admin/submissions/submission/"):
        response = client.get(url, {"q": NUL})
        assert response.status_code in (200, 400), (url, response.status_code)


@pytest.mark.parametrize("url, param", [
    ("/admin/submissions/submission/", "status__exact"),
    ("/admin/competitions/competition/", "visibility__exact"),
    ("/admin/accounts/profile/", "role__exact"),
    ("/admin/competitions/participation/", "q"),
])
def test_a_nul_byte_in_an_admin_filter_is_a_400(competition, django_user_model, url, param):
    root = django_user_model.objects.create_superuser("root", "r@example.org", "pw-root-123")
    client = Client(raise_request_exception=False)
    client.force_login(root)
    response = client.get(url, {param: NUL})
    assert response.status_code == 400 and b"Null characters are not allowed" in response.content
    assert client.get(url, {param + NUL: "x"}).status_code == 400  # in a name too


def test_an_overlong_page_parameter_is_a_400_that_says_why(competition):
    response = Client().get("/c/course/", {"category": "x" * 101})
    assert response.status_code == 400 and b"<html" in response.content
    assert b"category: Ensure this value has at most 100 characters" in response.content
