"""Schemathesis over the whole OpenAPI schema (drf-spectacular's), anonymous and authenticated,
against the WSGI app and the suite's real database: no generated request may get a 5xx, and every
status code the API answers is one the schema documents.

Bounded: 15 generated examples per operation, mode and caller, each also with NUL bytes added
(about 1.5 minutes in all on 2 busy cores).
"""

from __future__ import annotations

import pytest
import schemathesis
from arena.wsgi import application
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, status_code_conformance
from schemathesis.core.failures import FailureGroup

from tests.platform.helpers import client_for, scorecard

EXAMPLES = 15
# Who calls each generated request: set by the fixture (the tokens exist only inside a test).
CALLERS: dict[str, dict[str, str]] = {}


@pytest.fixture
def api_schema(competition, unlisted, instructor, make_user):
    ann = make_user("ann")
    _scored_submission(competition, ann)
    # Django's test client does this too (and undoes it after each of its requests, so after
    # the one above): these handlers would close the test's connection, which sits in the
    # test's transaction with the rows the fixtures made.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    CALLERS.clear()
    CALLERS.update(anonymous={}, student={"Authorization": f"Token {ann.api_token}"},
                   organizer={"Authorization": f"Token {instructor.api_token}"})
    yield schema
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _scored_submission(competition, user) -> None:
    """One ranked row, so leaderboards and the CSV have something to render."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from submissions import lifecycle
    from tests.evaluator.model_zoo import GOOD_MODELS

    response = client_for(user).post("/api/submissions/", {
        "file": SimpleUploadedFile("model.onnx", GOOD_MODELS["mnist_linear"]()),
        "competition": competition.slug, "track": "mnist"}, format="multipart")
    assert response.status_code == 201, response.content
    submission_id = response.json()["id"]
    lifecycle.record_scorecard(submission_id, lifecycle.claim(submission_id), scorecard())


@pytest.mark.django_db
@pytest.mark.slow
@pytest.mark.parametrize("caller", ["anonymous", "student", "organizer"])
def test_no_generated_request_is_a_server_error(api_schema, caller):
    headers = CALLERS[caller]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8  # the whole API, not an empty schema
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.generate])
            def run(case):
                # Real slugs as well as generated ones, so the checks behind the 404 run too.
                if "slug" in (case.path_parameters or {}) and len(case.path_parameters["slug"]) % 2:
                    case.path_parameters["slug"] = "secret" if caller == "anonymous" else "course"
                check(case)
                # Hypothesis seldom draws a NUL byte, which PostgreSQL refuses in text: every
                # text query parameter gets one too,
                texts = {k: v for k, v in (case.query or {}).items() if isinstance(v, str)}
                if texts:
                    case.query = {**case.query, **{k: f"{v}\x00" for k, v in texts.items()}}
                    check(case)
                if case.path_parameters:  # and every path parameter
                    case.path_parameters = {k: f"{v}\x00" for k, v in case.path_parameters.items()}
                    check(case)

            def check(case):
                cache.clear()  # throttle counts: every example reaches the view
                response = case.call(headers=headers)
                try:
                    case.validate_response(response,
                                           checks=[not_a_server_error, status_code_conformance])
                except FailureGroup as exc:  # collected, reported together below
                    failures.append(f"{case.method} {case.formatted_path} {case.query!r}: "
                                    f"{response.status_code} "
                                    + "; ".join(f.title for f in exc.exceptions))

            try:
                run()
            except Unsatisfiable:
                # Nothing to make invalid (an operation without parameters or body).
                assert mode == GenerationMode.NEGATIVE, operation.label
    assert not failures, "\n".join(dict.fromkeys(failures))


@pytest.mark.django_db
def test_the_schema_documents_the_error_answers():
    schema = client_for().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]

    def codes(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert codes("/api/submissions/", "post") >= {"201", "400", "401", "403", "404", "413", "429"}
    assert codes("/api/submissions/", "get") >= {"200", "400", "401", "429"}
    assert codes("/api/competitions/{slug}/leaderboard/", "get") >= {
        "200", "400", "403", "404", "429"}
    assert codes("/api/competitions/{slug}/results.csv", "get") >= {"200", "401", "403", "404"}
    leaderboard = {p["name"]: p for p in paths["/api/competitions/{slug}/leaderboard/"]["get"][
        "parameters"]}
    assert leaderboard["category"]["schema"]["enum"] == [
        "accuracy", "speed", "size", "efficiency", "pareto"]
    status = next(p for p in paths["/api/submissions/"]["get"]["parameters"]
                  if p["name"] == "status")
    assert "queued" in status["schema"]["enum"]
