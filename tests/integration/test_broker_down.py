"""An unreachable broker at upload time: the upload is stored and counted, the student is told so
in a second (JSON for the API, the page's answer for the form), and beat's sweep sends its check
once the queue is reachable; then it is checked and queued exactly once."""

from __future__ import annotations

import socket
import time

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from submissions.dispatch import BROKER_DOWN_NOTICE
from submissions.models import Status, Submission
from tests.evaluator.model_zoo import GOOD_MODELS
from tests.integration import platform_stack as stack
from tests.integration import test_platform_queue as platform_queue
from tests.platform import helpers
from tests.platform.helpers import distinct, point_celery_at, restore_celery

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

competition, instructor, make_user = helpers.competition, helpers.instructor, helpers.make_user
artifacts, suite_database = platform_queue.artifacts, platform_queue.suite_database
redis_queue, worker_env = platform_queue.redis_queue, platform_queue.worker_env


@pytest.fixture(params=["refused", "silent"])
def dead_broker(request):
    """A Redis URL nobody answers: a closed port (connection refused) or a port that accepts
    connections and never replies (a hung or firewalled host: the slow case)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if request.param == "refused":
        listener.close()
    else:
        listener.listen(64)  # the kernel completes the handshakes; nothing ever reads or writes
    yield f"redis://127.0.0.1:{port}/10"
    listener.close()


def status_of(submission_id: int) -> str:
    return Submission.objects.values_list("status", flat=True).get(pk=submission_id)


@pytest.mark.timeout(240)
def test_the_api_answers_saved_at_once_and_beat_sends_it_when_the_queue_is_back(
        competition, make_user, worker_env, dead_broker, tmp_path):
    ann = make_user("ann")
    port = stack.free_port()
    web_log = tmp_path / "web.log"
    web = stack.start_web({**worker_env, "CELERY_BROKER_URL": dead_broker}, port, web_log)
    base = f"http://127.0.0.1:{port}/api"
    processes = [web]
    try:
        stack.wait_for(lambda: _answers(base), 60, "gunicorn to answer", (web_log,), every=0.2)
        started = time.monotonic()
        response = requests.post(
            f"{base}/submissions/", headers={"Authorization": f"Token {ann.api_token}"},
            data={"competition": "course", "track": "mnist"},
            files={"file": ("model.onnx", distinct(GOOD_MODELS["mnist_linear"](), 0))}, timeout=60)
        answered_in = time.monotonic() - started
        print(f"broker {dead_broker}: upload answered in {answered_in:.2f} s")
        assert response.status_code == 201, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        body = response.json()
        assert body["status"] == "received" and body["error"] == BROKER_DOWN_NOTICE, body
        assert "saved" in body["error"] and "will be checked and scored" in body["error"]
        assert answered_in < 3, answered_in
        assert "Traceback" not in web_log.read_text()

        # The queue is back (workers and beat on the real Redis): beat's sweep sends the check.
        env = {**worker_env, "ARENA_VALIDATION_RESEND_AFTER_S": "2", "ARENA_REQUEUE_EVERY_S": "1"}
        log = tmp_path / "validator.log"
        processes.append(stack.start_validator(env, log, beat=True))
        back = time.monotonic()
        stack.wait_for(lambda: status_of(body["id"]) == Status.QUEUED, 90,
                       "the sweep to send the check", (log,), every=0.2)
        print(f"checked and queued {time.monotonic() - back:.1f} s after the queue was back")
        submission = Submission.objects.get(pk=body["id"])
        assert submission.validation_attempts == 1 and submission.error == ""
    finally:
        for process in processes:
            stack.stop(process)


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/competitions/", timeout=2).ok
    except requests.RequestException:
        return False


@pytest.mark.timeout(120)
def test_the_page_answers_saved_without_a_server_error(competition, make_user, dead_broker):
    """The student page's upload form (the page's script asks for JSON; without JavaScript the
    form is answered with a redirect to the page and its message)."""
    ann = make_user("ann")
    client = Client(raise_request_exception=False)
    client.force_login(ann)
    point = point_celery_at(dead_broker)
    try:
        for index, accept in enumerate(("application/json", "text/html")):
            model = SimpleUploadedFile("model.onnx", distinct(GOOD_MODELS["mnist_linear"](), index))
            started = time.monotonic()
            response = client.post("/c/course/me/", {"track": "mnist", "file": model},
                                   HTTP_ACCEPT=accept, follow=True)
            answered_in = time.monotonic() - started
            assert response.status_code in (200, 201), response.content[:500]
            assert answered_in < 3, answered_in
            text = response.content.decode()
            assert "received" in text.lower(), text[:2000]
    finally:
        restore_celery(point)
    submissions = Submission.objects.filter(user=ann)
    assert submissions.count() == 2
    assert {s.error for s in submissions} == {BROKER_DOWN_NOTICE}
