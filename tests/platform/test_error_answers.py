"""Errors answer in the client's language: JSON under /api/ and to JSON clients, HTML pages
elsewhere (unmatched paths, unreadable uploads)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.evaluator.model_zoo import GOOD_MODELS
from tests.platform.helpers import client_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/nope/", "/api/competitions/course/nothing/",
                                  "/api/competitions/é/", "/api/submissions/abc/"])
def test_unmatched_api_paths_answer_json_404(competition, path):
    response = client_for().get(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert "No API endpoint" in response.json()["detail"]


def test_pages_keep_their_html_404_and_api_slashes_still_redirect(competition):
    page = Client().get("/c/nope/")
    assert page.status_code == 404 and b"<html" in page.content
    assert Client().get("/no/such/page/").status_code == 404
    assert Client().get("/api/competitions").status_code == 301  # APPEND_SLASH as before


def _multipart(filename: str, fields: dict[str, str], content: bytes) -> tuple[bytes, str]:
    """A multipart body as a browser or curl sends it (Django's test client would cut the file
    name to 255 characters)."""
    boundary = "----arena-boundary-7c1f"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             .encode() for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                 .encode() + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_a_1000_character_file_name_gives_a_json_client_a_json_400(competition, make_user):
    ann = make_user("ann")
    name = "m" * 995 + ".onnx"
    body, content_type = _multipart(name, {"competition": "course", "track": "mnist"},
                                    GOOD_MODELS["mnist_linear"]())
    api = client_for(ann).generic("POST", "/api/submissions/", body, content_type=content_type)
    assert api.status_code == 400 and api["Content-Type"] == "application/json"
    assert "detail" in api.json()
    # The student page's upload script (session, CSRF header, Accept: JSON).
    client = Client(enforce_csrf_checks=True)
    client.force_login(ann)
    client.get("/c/course/me/")
    token = client.cookies["csrftoken"].value
    body, content_type = _multipart(name, {"track": "mnist"}, GOOD_MODELS["mnist_linear"]())
    page = client.generic("POST", "/c/course/me/", body, content_type=content_type,
                          HTTP_ACCEPT="application/json", HTTP_X_CSRFTOKEN=token)
    assert page.status_code == 400 and page["Content-Type"] == "application/json"
    assert page.json()["ok"] is False and "file name is too long" in page.json()["message"]
    # Without JavaScript the same refusal is a page that says why.
    body, content_type = _multipart(name, {"track": "mnist"}, GOOD_MODELS["mnist_linear"]())
    html = client.generic("POST", "/c/course/me/", body, content_type=content_type,
                          HTTP_X_CSRFTOKEN=token)
    assert html.status_code == 400 and b"file name is too long" in html.content
