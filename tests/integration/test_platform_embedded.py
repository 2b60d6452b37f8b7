"""The embedded default (a SQLite file, kombu's filesystem broker, no server to install) run as
real processes: manage.py, a Celery worker and gunicorn, each with its own environment."""

from __future__ import annotations

import re

import pytest
import requests

from tests.evaluator.model_zoo import BAD_MODELS, GOOD_MODELS
from tests.integration import platform_stack as stack

pytestmark = pytest.mark.integration


@pytest.fixture
def embedded_env(tmp_path, prepared_mnist_dir):
    """No DATABASE_URL and no CELERY_BROKER_URL: everything defaults under ARENA_VAR_DIR."""
    return stack.stack_env(ARENA_VAR_DIR=tmp_path / "var", ARENA_DATA_DIR=prepared_mnist_dir)


@pytest.mark.timeout(150)
def test_upload_is_scored_and_ranked_on_the_embedded_default(embedded_env, tmp_path):
    stack.manage(embedded_env, "migrate", "--noinput", "-v", "0")
    token = stack.manage(embedded_env, "create_user", "ann").strip()
    stack.manage(embedded_env, "create_competition", "course", "--title", "Course",
                 "--tracks", "mnist")
    assert (tmp_path / "var" / "arena.sqlite3").is_file()
    port = stack.free_port()
    logs = (tmp_path / "worker.log", tmp_path / "web.log", tmp_path / "validator.log")
    worker = stack.start_worker(embedded_env, logs[0])
    validator = stack.start_validator(embedded_env, logs[2])
    web = stack.start_web(embedded_env, port, logs[1])
    base = f"http://127.0.0.1:{port}/api"
    auth = {"Authorization": f"Token {token}"}

    def answers():
        try:
            return requests.get(f"{base}/competitions/", timeout=2).ok
        except requests.RequestException:
            return False

    def post(model: bytes) -> dict:
        response = requests.post(f"{base}/submissions/", headers=auth, timeout=60,
                                 data={"competition": "course", "track": "mnist"},
                                 files={"file": ("model.onnx", model)})
        assert response.status_code == 201, response.text
        return response.json()

    def status(submission_id: int) -> str:
        return requests.get(f"{base}/submissions/{submission_id}/", headers=auth,
                            timeout=10).json()["status"]

    try:
        stack.wait_for(answers, 60, "gunicorn to answer", logs, every=0.2)
        rejected = post(BAD_MODELS["garbage_bytes"]())
        assert rejected["status"] == "received"  # stored; checked by the validation worker
        stack.wait_for(lambda: status(rejected["id"]) == "rejected", 60, "the check", logs,
                       every=0.2)
        body = post(GOOD_MODELS["mnist_cnn"]())
        assert body["status"] == "received"
        stack.wait_for(lambda: status(body["id"]) in ("scored", "failed", "rejected"), 90,
                       "the worker to score the upload", logs, every=0.3)
        assert status(body["id"]) == "scored"
        rows = requests.get(f"{base}/competitions/course/leaderboard/", timeout=10).json()["rows"]
        assert [(r["rank"], r["username"], r["submission_id"]) for r in rows] == [
            (1, "ann", body["id"])]
        assert not (tmp_path / "var" / "broker" / "queue").exists() or not any(
            (tmp_path / "var" / "broker" / "queue").iterdir())  # the message was consumed
    finally:
        stack.stop(web)
        stack.stop(worker)
        stack.stop(validator)


@pytest.mark.timeout(200)
def test_demo_command_runs_the_whole_platform_and_scores_the_baselines(embedded_env, tmp_path):
    """`make demo`'s command with --check: migrate, datasets, users, competition, worker, web,
    baselines submitted and scored, then a clean exit."""
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / "mnist_cnn.onnx").write_bytes(GOOD_MODELS["mnist_cnn"]())
    (baselines / "cifar10_cnn.onnx").write_bytes(GOOD_MODELS["cifar10_cnn"]())  # not requested
    port = stack.free_port()
    result = stack.run_manage(
        embedded_env, "demo", "--check", "--port", str(port), "--tasks", "mnist",
        "--baselines", str(baselines), "--timeout", "120", timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"http://127.0.0.1:{port}" in output and "student token:" in output
    assert "baseline mnist_cnn.onnx: scored" in output and "cifar10_cnn" not in output
    # The demo students' models (pruned from the baseline) are scored and ranked.
    assert "demo students ada, ben, cleo: 4 uploads" in output, output
    assert re.search(r"track mnist: [1-9]\d* ranked students, [1-9]\d* models on the Pareto "
                     r"front", output), output
    assert "demo check passed" in output
