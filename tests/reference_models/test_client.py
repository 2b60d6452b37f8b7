"""The student's platform client and ``arena submit`` / ``arena leaderboard``: settings resolution
and upload encoding (units), then the whole submit path against a live platform started by the
test (gunicorn, a Celery worker, the embedded SQLite + filesystem broker, the real evaluator on the
real MNIST)."""

from __future__ import annotations

import json
import re
import threading

import onnx
import pytest
import requests

from reference_models.cli import main
from reference_models.client import (
    DEFAULT_SERVER,
    ArenaClient,
    ClientError,
    Settings,
    _ProgressReader,
    multipart_body,
    resolve_settings,
)
from tests.conftest import REPO_ROOT
from tests.evaluator.model_zoo import BAD_MODELS, GOOD_MODELS
from tests.integration import platform_stack as stack

BASELINES = REPO_ROOT / "reference_models" / "baselines"


# ===================================================================== units
def test_flags_beat_environment_beat_config_file(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"server": "http://file:1/", "token": "from-file"}))
    env = {"ARENA_SERVER": "http://env:2", "ARENA_TOKEN": "from-env"}
    assert resolve_settings(None, None, {}, config) == Settings("http://file:1", "from-file")
    assert resolve_settings(None, None, env, config) == Settings("http://env:2", "from-env")
    assert resolve_settings("http://flag:3", "from-flag", env, config) == Settings(
        "http://flag:3", "from-flag")
    assert resolve_settings(None, None, {}, tmp_path / "missing.json") == Settings(
        DEFAULT_SERVER, None)


def test_a_broken_config_file_is_reported_by_name(tmp_path):
    config = tmp_path / "config.json"
    config.write_text("{not json")
    with pytest.raises(ClientError, match="config.json"):
        resolve_settings(None, None, {}, config)


def test_config_file_lives_under_xdg_config_home(tmp_path):
    from reference_models.client import config_path

    assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "arena" / "config.json"


def test_multipart_body_is_what_a_server_parses():
    from email.parser import BytesParser

    body, content_type = multipart_body({"competition": "course", "track": "mnist"}, "file",
                                        'we"ird.onnx', b"\x00\x01model")
    message = BytesParser().parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts = {p.get_param("name", header="content-disposition"): p for p in message.get_payload()}
    assert parts["competition"].get_payload() == "course"
    assert parts["file"].get_payload(decode=True) == b"\x00\x01model"
    assert parts["file"].get_filename() == "weird.onnx"


def test_progress_reader_reports_every_byte_once():
    sent = []
    reader = _ProgressReader(b"x" * 1000, sent.append)
    assert len(reader) == 1000
    chunks = [reader.read(300) for _ in range(5)]
    assert b"".join(chunks) == b"x" * 1000 and sum(sent) == 1000


def test_missing_token_says_how_to_give_one():
    client = ArenaClient(Settings("http://127.0.0.1:9", None))
    with pytest.raises(ClientError, match="ARENA_TOKEN"):
        client.submission(1)


def test_unreachable_server_is_a_clear_error(tmp_path, capsys):
    model = tmp_path / "model.onnx"
    model.write_bytes(GOOD_MODELS["mnist_linear"]())
    port = stack.free_port()  # nothing listens there
    code = main(["submit", str(model), "--competition", "c", "--track", "mnist", "--server",
                 f"http://127.0.0.1:{port}", "--token", "t"])
    assert code == 1
    assert "cannot reach the server" in capsys.readouterr().out


def test_the_wait_is_described_with_the_queue_position_and_the_estimate():
    from reference_models.commands.submit import describe_wait

    assert describe_wait({"status": "scoring", "queue_position": None}) == "scoring"
    assert describe_wait({"status": "queued", "queue_position": 1,
                          "estimated_wait_seconds": None}) == (
        "queued at position 1 (next to be scored)")
    assert describe_wait({"status": "queued", "queue_position": 3,
                          "estimated_wait_seconds": 150.0}) == (
        "queued at position 3 (2 ahead), about 2 min until scored")
    assert describe_wait({"status": "queued", "queue_position": 2,
                          "estimated_wait_seconds": 12.4}).endswith("about 12 s until scored")
    # Before the queue: the file's check, on the platform's validation workers.
    assert describe_wait({"status": "received"}) == "received (saved; waiting for its check)"
    assert describe_wait({"status": "validating"}) == (
        "validating (the platform is checking the file)")


# ===================================================================== live platform
@pytest.fixture
def live_platform(tmp_path, prepared_mnist_dir):
    """gunicorn + a Celery worker on the embedded default; yields (base URL, student token)."""
    yield from _live_platform(tmp_path, prepared_mnist_dir, worker=True)


@pytest.fixture
def live_web(tmp_path, prepared_mnist_dir):
    """Like ``live_platform`` without a worker: yields (base URL, token, logs, start_worker)."""
    yield from _live_platform(tmp_path, prepared_mnist_dir, worker=False)


def _live_platform(tmp_path, data_dir, worker: bool):
    env = stack.stack_env(ARENA_VAR_DIR=tmp_path / "var", ARENA_DATA_DIR=data_dir)
    stack.manage(env, "migrate", "--noinput", "-v", "0")
    token = stack.manage(env, "create_user", "ann").strip()
    stack.manage(env, "create_competition", "course", "--title", "Course", "--tracks", "mnist",
                 "--daily-limit", "10")
    port = stack.free_port()
    logs = (tmp_path / "worker.log", tmp_path / "web.log", tmp_path / "validator.log")
    # Uploads are checked by a validation worker (always there); scoring waits for `worker`.
    workers = [stack.start_validator(env, logs[2])]

    def start_worker():
        workers.append(stack.start_worker(env, logs[0]))

    if worker:
        start_worker()
    web = stack.start_web(env, port, logs[1])
    base = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return requests.get(f"{base}/api/competitions/", timeout=2).ok
        except requests.RequestException:
            return False

    try:
        stack.wait_for(answers, 60, "gunicorn to answer", logs, every=0.2)
        yield (base, token, logs) if worker else (base, token, logs, start_worker)
    finally:
        stack.stop(web)
        for process in workers:
            stack.stop(process)


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_submit_prints_the_queue_position_and_the_wait(live_web, tmp_path, capsys,
                                                      monkeypatch):
    base, token, logs, start_worker = live_web
    monkeypatch.setenv("COLUMNS", "200")
    def model_file(n: int) -> str:
        # Distinct bytes each time: an identical upload would return the earlier submission.
        proto = onnx.load_from_string(GOOD_MODELS["mnist_linear"]())
        proto.doc_string = f"variant {n}"
        path = tmp_path / f"model{n}.onnx"
        path.write_bytes(proto.SerializeToString())
        return str(path)

    common = ["--competition", "course", "--track", "mnist", "--server", base, "--token", token]
    # No scoring worker yet: the uploads are checked (the validator), wait, and say where they
    # stand; --no-wait still follows the check, received -> ... -> queued.
    assert main(["submit", model_file(1), "--no-wait", *common]) == 0
    out = capsys.readouterr().out
    assert "received (saved; waiting for its check)" in out, out
    assert "queued at position 1 (next to be scored)" in out, out
    assert main(["submit", model_file(2), "--no-wait", *common]) == 0
    assert "queued at position 2 (1 ahead)" in capsys.readouterr().out
    # The third waits; a worker starts meanwhile and the queue moves under it.
    timer = threading.Timer(2.0, start_worker)
    timer.start()
    try:
        code = main(["submit", model_file(3), *common, "--poll", "0.2", "--timeout", "180"])
    finally:
        timer.join()
    out = capsys.readouterr().out
    assert code == 0, out + "".join(log.read_text()[-3000:] for log in logs if log.exists())
    assert "queued at position 3 (2 ahead)" in out, out
    # Once a run has finished the estimate is shown (position x the class's mean run time).
    assert re.search(r"queued at position 1 \(next to be scored\), about \d+ (s|min) until "
                     r"scored", out), out
    assert re.search(r"scored.*accuracy", out), out


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_submit_uploads_waits_for_the_scores_and_prints_ranks(live_platform, tmp_path, capsys,
                                                              monkeypatch):
    base, token, logs = live_platform
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("ARENA_TOKEN", token)  # the token from the environment, server by flag
    good = BASELINES / "mnist_mlp.onnx"  # a trained model: above the floor, ranked everywhere
    code = main(["submit", str(good), "--competition", "course", "--track", "mnist",
                 "--server", base, "--poll", "0.3", "--timeout", "150"])
    out = capsys.readouterr().out
    assert code == 0, out + "".join(log.read_text()[-3000:] for log in logs if log.exists())
    assert re.search(r"scored.*accuracy \d+\.\d\d% \(public split\).*latency", out), out
    assert "accuracy #1" in out and "size #1" in out and "efficiency #1" in out, out

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(BAD_MODELS["garbage_bytes"]())
    code = main(["submit", str(garbage), "--competition", "course", "--track", "mnist",
                 "--server", base])
    out = capsys.readouterr().out
    assert code == 1 and "rejected" in out and "ONNX" in out, out

    code = main(["leaderboard", "course", "--track", "mnist", "--server", base])
    out = capsys.readouterr().out
    assert code == 0 and "ann" in out and "course / mnist: accuracy" in out, out

    # `arena submissions` lists the scored upload (and the rejected one); `arena final` marks it.
    code = main(["submissions", "--competition", "course", "--json", "--server", base])
    rows = json.loads(capsys.readouterr().out)
    scored = next(row for row in rows if row["status"] == "scored")
    assert code == 0 and not scored["final"] and len(rows) == 2, rows
    code = main(["final", str(scored["id"]), "--server", base])
    out = capsys.readouterr().out
    assert code == 0 and f"submission {scored['id']} (course / mnist) is final" in out, out
    code = main(["submissions", "--server", base])
    out = capsys.readouterr().out
    assert code == 0 and re.search(rf"{scored['id']} .*final", out), out
    code = main(["final", "999999", "--server", base])
    out = capsys.readouterr().out
    assert code == 1 and "you have no submission 999999" in out, out
    code = main(["final", str(scored["id"]), "--unmark", "--server", base])
    assert code == 0 and "is no longer final" in capsys.readouterr().out

    code = main(["submit", str(good), "--competition", "nope", "--track", "mnist",
                 "--server", base, "--token", "wrong"])
    assert code == 1 and "token" in capsys.readouterr().out

    weak = tmp_path / "untrained.onnx"
    weak.write_bytes(GOOD_MODELS["mnist_cnn"]())  # valid but untrained: under the floor
    code = main(["submit", str(weak), "--competition", "course", "--track", "mnist",
                 "--server", base, "--poll", "0.3"])
    out = capsys.readouterr().out
    assert code == 0 and "speed -" in out and "accuracy floor" in out, out
