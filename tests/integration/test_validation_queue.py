"""Validation out of the upload request, for real: gunicorn, a worker of the validation queue,
Redis, the suite's database (PostgreSQL under CI), uploads over HTTP.

A valid MNIST model that is a chain of 150,000 Relu nodes (3.7 MB) takes 17-44 s to validate
(28 s at load 9 on this machine); in the request it held a gunicorn worker until its 30 s kill.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests
from onnx import TensorProto, helper, numpy_helper

from submissions import quotas
from submissions.models import Submission
from tests.evaluator.model_zoo import GOOD_MODELS
from tests.integration import platform_stack as stack
from tests.integration import test_platform_queue as platform_queue
from tests.platform import helpers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

competition, instructor, make_user = helpers.competition, helpers.instructor, helpers.make_user
artifacts, suite_database = platform_queue.artifacts, platform_queue.suite_database
redis_queue, worker_env = platform_queue.redis_queue, platform_queue.worker_env


def relu_chain(nodes: int = 150_000) -> bytes:
    """A valid mnist model: image -> Relu x ``nodes`` -> Flatten -> Gemm(784 -> 10)."""
    names = ["image"] + [f"r{i}" for i in range(nodes)]
    graph_nodes = [helper.make_node("Relu", [names[i]], [names[i + 1]]) for i in range(nodes)]
    graph_nodes += [helper.make_node("Flatten", [names[-1]], ["flat"], axis=1),
                    helper.make_node("Gemm", ["flat", "W", "b"], ["scores"], transB=1)]
    weights = [numpy_helper.from_array(np.zeros((10, 784), np.float32), "W"),
               numpy_helper.from_array(np.zeros(10, np.float32), "b")]
    graph = helper.make_graph(
        graph_nodes, "relu_chain",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 10])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    return model.SerializeToString()


@pytest.fixture
def web(worker_env, tmp_path):
    port = stack.free_port()
    log = tmp_path / "web.log"
    process = stack.start_web(worker_env, port, log)
    base = f"http://127.0.0.1:{port}/api"

    def answers():
        try:
            return requests.get(f"{base}/competitions/", timeout=2).ok
        except requests.RequestException:
            return False

    try:
        stack.wait_for(answers, 60, "gunicorn to answer", (log,), every=0.2)
        yield base, log
    finally:
        stack.stop(process)


@pytest.mark.timeout(300)
def test_a_model_slow_to_validate_is_answered_at_once_and_checked_by_a_worker(
        competition, make_user, worker_env, web, tmp_path):
    base, web_log = web
    track = competition.tracks.get(slug="mnist")
    ann = make_user("ann")
    auth = {"Authorization": f"Token {ann.api_token}"}
    # The gate's limit, short here so the heavy model reaches its final status in seconds.
    validator_log = tmp_path / "validator.log"
    validator = stack.start_validator({**worker_env, "ARENA_VALIDATION_TIMEOUT_S": "6"},
                                      validator_log)
    logs = (validator_log, web_log)
    heavy = relu_chain()

    def post(model: bytes, name: str) -> tuple[dict, float]:
        started = time.monotonic()
        response = requests.post(f"{base}/submissions/", headers=auth, timeout=60,
                                 data={"competition": "course", "track": "mnist"},
                                 files={"file": (name, model)})
        assert response.status_code == 201, response.text
        return response.json(), time.monotonic() - started

    def status(submission_id: int) -> str:
        return requests.get(f"{base}/submissions/{submission_id}/", headers=auth,
                            timeout=10).json()["status"]

    try:
        body, answered_in = post(heavy, "relu_chain.onnx")
        print(f"150k-node upload ({len(heavy) / 1e6:.1f} MB) answered in {answered_in:.2f} s")
        assert body["status"] == "received" and answered_in < 3, (body, answered_in)
        # The slots are held from the upload on (daily and, while unchecked, rejected).
        assert quotas.usage(track, ann).last_24h == 1
        # `validating` shows through the API while the worker checks it ...
        stack.wait_for(lambda: status(body["id"]) == "validating", 60, "validating", logs,
                       every=0.1)
        # ... the web tier answers meanwhile, and another upload is checked beside it.
        started = time.monotonic()
        assert requests.get(f"{base}/competitions/", timeout=10).ok
        assert time.monotonic() - started < 2
        small, small_answered_in = post(GOOD_MODELS["mnist_linear"](), "small.onnx")
        assert small_answered_in < 3
        stack.wait_for(lambda: status(small["id"]) == "queued", 30,
                       "the small upload to be checked beside the heavy one", logs, every=0.1)
        assert status(body["id"]) == "validating"
        stack.wait_for(lambda: status(body["id"]) not in ("received", "validating"), 90,
                       "the heavy upload's verdict", logs, every=0.2)
        detail = requests.get(f"{base}/submissions/{body['id']}/", headers=auth,
                              timeout=10).json()
        assert detail["status"] == "rejected", detail
        assert "took longer than 6 seconds" in detail["error"], detail["error"]
        # Slot accounting: the rejected one gave its daily slot back and counts as rejected.
        used = quotas.usage(track, ann)
        assert (used.last_24h, used.total, used.rejected_last_24h) == (1, 1, 1)
        heavy_row = Submission.objects.get(pk=body["id"])
        assert heavy_row.validation_attempts == 1 and heavy_row.finished_at is not None
    finally:
        stack.stop(validator)
