"""The locked-down child: bad models fail cleanly, within bounds, and the test process survives."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from evaluator import scoring
from evaluator.latency import LatencyProtocol
from evaluator.sandbox import (
    ChildOutcome,
    IsolationUnavailable,
    SandboxLimits,
    _child_env,
    check_isolation,
    missing_isolation,
    parse_isolations,
    probe_isolation,
    run_child,
)
from evaluator.scoring import IsolationError, ScoringError, _failure_without_result, score
from evaluator.validation.isolated import validate_isolated, validation_limits
from tests.evaluator import model_zoo
from tests.evaluator.scoring_helpers import (
    batch_sized_allocation,
    index_out_of_range,
)

QUICK = LatencyProtocol.quick()
LIMITS = SandboxLimits(timeout_s=30, memory_limit_mb=1024).resolved()


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _score(model: bytes, data_dir, **kwargs) -> dict:
    kwargs.setdefault("timeout_s", 30)
    kwargs.setdefault("memory_limit_mb", 1024)
    return score(model, "mnist", data_dir=data_dir, protocol=QUICK, **kwargs)


def test_endless_loop_is_killed_within_the_timeout(tiny_data_dir):
    started = time.monotonic()
    card = _score(model_zoo.endless_loop(), tiny_data_dir, timeout_s=3)
    elapsed = time.monotonic() - started
    assert card["valid"] is False and card["failure_kind"] == "timeout"
    assert "time limit" in card["error"] and "3 s" in card["error"]
    # The hard kill came on time (the model would never return). The clock is the model's: it
    # starts when the child is ready, so a slow start on a busy machine is not counted.
    assert card["sandbox"]["model_seconds"] < 3 + 1
    start = card["sandbox"]["wall_seconds"] - card["sandbox"]["model_seconds"]
    assert elapsed - start < 3 + 3


def test_allocation_sized_by_the_batch_is_contained_by_the_address_space_limit(tiny_data_dir):
    # 40 MB per image: about 2.4 GB for a 60-image batch; fine on this machine without limits.
    before = _rss_mb()
    card = _score(batch_sized_allocation(40 * 2**20), tiny_data_dir, memory_limit_mb=1024)
    assert card["failure_kind"] == "memory", card["error"]
    assert "more memory than the limit" in card["error"] and "ConstantOfShape" in card["error"]
    assert _rss_mb() - before < 100  # the caller never held the model's memory


@pytest.mark.parametrize(
    ("name", "kind", "words"),
    [
        ("nan_outputs", "bad_output", "NaN"),
        ("runtime_wrong_shape", "bad_output", "shape"),
    ],
)
def test_runtime_bad_models_from_the_zoo_fail_cleanly(name, kind, words, tiny_data_dir):
    card = _score(model_zoo.BAD_MODELS[name](), tiny_data_dir)
    assert card["valid"] is False
    assert card["failure_kind"] == kind
    assert words in card["error"]
    assert card["accuracy"] is None and card["latency_ms"] is None


def test_every_runtime_bad_model_of_the_zoo_is_a_failure_record(tiny_data_dir):
    before = _rss_mb()
    for name in sorted(model_zoo.RUNTIME_BAD_MODELS):
        task = model_zoo.BAD_MODEL_TASKS[name]
        card = score(model_zoo.BAD_MODELS[name](), task, data_dir=tiny_data_dir, protocol=QUICK,
                     timeout_s=3, memory_limit_mb=1024)
        assert card["valid"] is False, name
        assert card["failure_kind"] in {"timeout", "memory", "crash", "bad_output"}, name
        assert card["error"], name
    assert _rss_mb() - before < 100


def test_runtime_error_in_onnxruntime_is_a_crash_naming_the_node(tiny_data_dir):
    card = _score(index_out_of_range(), tiny_data_dir)
    assert card["failure_kind"] == "crash"
    assert "Gather" in card["error"] and "out of data bounds" in card["error"]


def test_statically_invalid_models_never_reach_the_child(tiny_data_dir):
    card = _score(model_zoo.giant_constant_of_shape(), tiny_data_dir)
    assert card["failure_kind"] == "invalid"
    assert card["sandbox"].get("wall_seconds") is None  # no child was started
    assert "memory" in card["error"]


def _probe(limits: SandboxLimits, server_port: int) -> dict:
    """Apply the limits in a fresh interpreter and report what the process can then do."""
    code = f"""
import json, os, resource, socket
from evaluator.sandbox import apply_child_limits
report = apply_child_limits(json.loads({json.dumps(json.dumps(limits.to_dict()))}))
try:
    socket.create_connection(("127.0.0.1", {server_port}), timeout=2).close()
    reached = True
except OSError:
    reached = False
print(json.dumps({{
    "report": report,
    "reached": reached,
    "as": resource.getrlimit(resource.RLIMIT_AS)[0],
    "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
    "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    "core": resource.getrlimit(resource.RLIMIT_CORE)[0],
    "affinity": sorted(os.sched_getaffinity(0)),
}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=os.getcwd())
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_child_limits_take_effect_in_a_real_process():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        limits = SandboxLimits(timeout_s=7, memory_limit_mb=900, open_files=32, cpu=0).resolved()
        seen = _probe(limits, server.getsockname()[1])
    finally:
        server.close()
    assert seen["as"] == 900 * 2**20
    assert seen["cpu"] == 7 and seen["nofile"] == 32 and seen["core"] == 0
    assert seen["affinity"] == [0]
    # Network: isolated where the OS allows it, and then truly unreachable; reported either way.
    assert seen["reached"] is not seen["report"]["network_isolated"]


def test_child_environment_carries_no_secrets_of_the_worker(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://secret@db/arena")
    environment = _child_env()
    assert "DATABASE_URL" not in environment
    assert environment["OMP_NUM_THREADS"] == "1"


def test_child_locks_down_in_an_empty_directory_before_loading_data():
    # A job the child cannot load data for: it reports a platform error after locking down.
    outcome = run_child({"task": "mnist", "data_dir": "/nonexistent", "protocol": QUICK.to_dict(),
                         "context_length": None}, b"", LIMITS)
    assert outcome.result["status"] == "platform_error"
    assert "not prepared" in outcome.result["message"]
    report = outcome.stage_info("sandbox")
    assert report["address_space_mb"] == 1024 and report["working_directory_empty"] is True
    assert outcome.returncode == 0


def _outcome(stage: str | None, returncode: int, timed_out: bool = False, stderr: str = ""):
    stages = [{"stage": "started"}] + ([{"stage": stage}] if stage else [])
    return ChildOutcome(None, stages, returncode, timed_out, stderr, 1.0)


def test_classification_of_children_that_died_without_a_result():
    kind, _ = _failure_without_result(_outcome("accuracy", -signal.SIGXCPU), LIMITS)
    assert kind == "timeout"
    kind, message = _failure_without_result(_outcome("latency", -signal.SIGSEGV), LIMITS)
    assert kind == "crash" and "SIGSEGV" in message and "latency" in message
    kind, _ = _failure_without_result(_outcome("loading", -signal.SIGABRT, stderr="std::bad_alloc"),
                                      LIMITS)
    assert kind == "memory"
    kind, _ = _failure_without_result(_outcome("accuracy", -signal.SIGKILL, timed_out=True), LIMITS)
    assert kind == "timeout"


def test_a_child_dying_before_the_model_ran_is_the_platforms_fault():
    from evaluator.scoring import ScoringError

    with pytest.raises(ScoringError, match="before running the model"):
        _failure_without_result(_outcome(None, 1, stderr="ImportError"), LIMITS)


def test_limits_apply_to_the_child_only(tiny_data_dir):
    _score(model_zoo.mnist_cnn(), tiny_data_dir)
    assert resource.getrlimit(resource.RLIMIT_AS)[0] != 1024 * 2**20


def test_a_child_that_cannot_start_is_a_platform_error(monkeypatch, tiny_data_dir):
    from evaluator.scoring import ScoringError

    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(ScoringError, match="could not start"):
        _score(model_zoo.mnist_cnn(), tiny_data_dir)


# --- stage-aware deadlines: the probe, the time budget, and the platform's own start -------------

def test_endless_model_is_answered_as_too_slow_in_seconds_not_at_the_timeout(tiny_data_dir):
    started = time.monotonic()
    card = _score(model_zoo.endless_loop(), tiny_data_dir, timeout_s=600, latency_limit_ms=100)
    elapsed = time.monotonic() - started
    assert card["valid"] is False and card["failure_kind"] == "too_slow", card["error"]
    # The measured time in words, and why it can never be ranked.
    assert "still running after 5.0 s" in card["error"] and "100 ms" in card["error"]
    assert card["sandbox"]["probe_deadline_s"] == 5.0
    assert card["sandbox"]["model_seconds"] < 5 + 2
    assert elapsed < 30  # the bound, on a loaded machine too (the start is not counted)


def test_probe_deadline_follows_the_latency_limit():
    from evaluator.scoring import probe_deadline_s

    assert probe_deadline_s(100) == 5.0  # 20 x 100 ms = 2 s, below the 5 s floor
    assert probe_deadline_s(1000) == 20.0


def test_the_budget_ends_a_model_slow_only_at_the_accuracy_batch(tiny_data_dir, monkeypatch):
    import evaluator.scoring as scoring

    monkeypatch.setattr(scoring, "BUDGET_SLACK_S", 1.0)
    started = time.monotonic()
    card = _score(model_zoo.batch_cubed_loop(), tiny_data_dir, timeout_s=600)
    elapsed = time.monotonic() - started
    assert card["failure_kind"] == "timeout", card["error"]
    assert "time budget" in card["error"] and "first inference" in card["error"]
    assert "scoring the hidden set" in card["error"]
    budget = card["sandbox"]["time_budget_s"]
    assert 3 < budget < 30  # QUICK's two 2 s timing loops, 1 s slack, a sub-ms inference x 632
    assert elapsed < budget + 20


def test_time_budget_scales_with_the_probe_and_the_task():
    from evaluator.scoring import time_budget_s

    standard = LatencyProtocol.standard()
    fast = time_budget_s({"probe_seconds": 0.001, "samples": 10_000}, standard)
    slow = time_budget_s({"probe_seconds": 0.1, "samples": 10_000}, standard)
    bigger = time_budget_s({"probe_seconds": 0.1, "samples": 20_000}, standard)
    assert fast < slow < bigger
    assert bigger - slow == pytest.approx(4 * 0.1 * 10_000)
    assert time_budget_s({"stage": "accuracy"}, standard) is None  # nothing measured: no budget


def _watch(timeout_s=10.0, **deadlines):
    from evaluator.sandbox import StageDeadlines, _Watch

    return _Watch(SandboxLimits(timeout_s=timeout_s).resolved(), StageDeadlines(**deadlines), 0.0)


def test_deadlines_follow_the_stages():
    watch = _watch(timeout_s=10.0, startup_s=60.0, probe_s=2.0, budget=lambda stage: 3.0)
    assert (watch.kind, watch.at) == ("startup", 60.0)
    watch.stage({"stage": "started"}, 30.0)
    assert (watch.kind, watch.at) == ("startup", 60.0)  # still the platform's
    watch.stage({"stage": "ready"}, 50.0)  # a slow start: the model's clock starts only now
    assert (watch.kind, watch.at) == ("timeout", 60.0)
    watch.stage({"stage": "loading"}, 51.0)
    watch.stage({"stage": "probe"}, 52.0)
    assert (watch.kind, watch.at) == ("probe", 54.0)
    watch.stage({"stage": "accuracy", "probe_seconds": 0.001, "samples": 5}, 52.5)
    assert (watch.kind, watch.at, watch.budget_s) == ("budget", 55.5, 3.0)
    watch.stage({"stage": "latency"}, 55.0)
    assert watch.kind == "budget"
    # The model's timeout caps every model deadline.
    capped = _watch(timeout_s=1.0, probe_s=5.0)
    capped.stage({"stage": "ready"}, 0.0)
    capped.stage({"stage": "probe"}, 0.5)
    assert (capped.kind, capped.at) == ("timeout", 1.0)


def test_a_child_not_ready_by_the_platforms_deadline_is_a_platform_error(tiny_data_dir):
    from evaluator.sandbox import StageDeadlines
    from evaluator.scoring import ScoringError

    job = {"task": "mnist", "data_dir": str(tiny_data_dir), "protocol": QUICK.to_dict(),
           "context_length": None}
    outcome = run_child(job, model_zoo.mnist_linear(), LIMITS, StageDeadlines(startup_s=0.05))
    assert outcome.expired == "startup" and outcome.timed_out and outcome.result is None
    assert outcome.model_seconds is None  # the model never ran
    with pytest.raises(ScoringError, match="not ready within"):
        _failure_without_result(outcome, LIMITS)


def test_the_child_dies_with_its_parent(tiny_data_dir, tmp_path):
    # A scorer killed mid-inference (kill -9, a worker restart, `timeout` around the CLI) must not
    # leave its child running the model on the scoring core for the rest of its budget.
    model = tmp_path / "endless.onnx"
    model.write_bytes(model_zoo.endless_loop())
    code = (
        "import sys\n"
        "from evaluator.latency import LatencyProtocol\n"
        "from evaluator.scoring import score\n"
        "score(sys.argv[1], 'mnist', data_dir=sys.argv[2], protocol=LatencyProtocol.quick(),\n"
        "      timeout_s=300, latency_limit_ms=60_000)\n"
    )
    from tests.conftest import REPO_ROOT

    parent = subprocess.Popen([sys.executable, "-c", code, str(model), str(tiny_data_dir)],
                              cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        child = None
        deadline = time.monotonic() + 120  # a loaded machine starts the child slowly
        while time.monotonic() < deadline:
            kids = [p for p in psutil.Process(parent.pid).children()
                    if "evaluator._child" in " ".join(p.cmdline())]
            # Starting and loading the tiny data take about 1.5 s of CPU; past 4 s it runs the loop.
            if kids and kids[0].cpu_times().user > 4.0:
                child = kids[0]
                break
            time.sleep(0.2)
        assert child is not None, "the scoring child never started running the model"
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        gone, alive = psutil.wait_procs([child], timeout=10)
        assert not alive, f"the child {child.pid} outlived its killed parent"
    finally:
        parent.kill()
        parent.wait()


# --- Required isolation (ARENA_REQUIRE_ISOLATION): refuse rather than run without it -------------

ROOT = hasattr(os, "getuid") and os.getuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="the privilege drop and CLONE_NEWNET need root")
BOTH = ("network", "user")


def _weakened(monkeypatch, **changes) -> None:
    """Make ``score`` start its (real) child with an isolation switched off, as a container that
    refuses it would: the child must notice and refuse."""
    real = scoring.run_child

    def run(job, payload, limits, deadlines=None):
        return real(job, payload, dataclasses.replace(limits, **changes), deadlines)

    monkeypatch.setattr(scoring, "run_child", run)


def test_isolation_names_are_checked():
    assert parse_isolations("network, user") == BOTH
    assert parse_isolations("none") == parse_isolations("") == ()
    with pytest.raises(ValueError, match="unknown isolation seccomp"):
        parse_isolations("network,seccomp")
    with pytest.raises(ValueError, match="unknown isolation"):
        SandboxLimits(require_isolation=("netwrk",))
    # Fails closed: a report that does not say an isolation took effect lacks it.
    assert len(missing_isolation(BOTH, {})) == 2
    assert missing_isolation(BOTH, {"network_isolated": True, "user": "nobody", "uid": 65534}) == []
    words = missing_isolation(("user",), {"user": None, "uid": 1000, "worker_uid": 1000})
    assert "does not run as root" in words[0] and "uid 1000" in words[0]


def test_a_missing_network_namespace_refuses_before_the_model_is_read(tiny_data_dir):
    job = {"task": "mnist", "data_dir": str(tiny_data_dir), "protocol": QUICK.to_dict(),
           "context_length": None}
    limits = dataclasses.replace(LIMITS, isolate_network=False, require_isolation=("network",))
    outcome = run_child(job, model_zoo.mnist_linear(), limits)
    assert outcome.result["status"] == "isolation_missing"
    assert "network namespace" in outcome.result["message"]
    # It never said "ready", the point after which it reads the model from stdin.
    assert [stage["stage"] for stage in outcome.stages] == ["started"]


def test_scoring_without_a_required_isolation_is_a_platform_error(tiny_data_dir, monkeypatch):
    _weakened(monkeypatch, isolate_network=False)
    with pytest.raises(IsolationError, match="ARENA_REQUIRE_ISOLATION.*network namespace") as info:
        _score(model_zoo.mnist_linear(), tiny_data_dir, require_isolation=("network",))
    assert isinstance(info.value, ScoringError)  # the platform's fault: retried, never the model's
    monkeypatch.undo()
    _weakened(monkeypatch, drop_privileges=False)
    with pytest.raises(IsolationError, match="user: the model would not run as nobody"):
        _score(model_zoo.mnist_linear(), tiny_data_dir, require_isolation=("user",))


def test_without_a_requirement_the_run_only_reports(tiny_data_dir, monkeypatch):
    _weakened(monkeypatch, isolate_network=False)
    card = _score(model_zoo.mnist_linear(), tiny_data_dir)
    assert card["valid"] is True and card["sandbox"]["network_isolated"] is False


@needs_root
def test_as_root_the_model_runs_as_nobody_in_its_own_network_namespace(tiny_data_dir):
    card = _score(model_zoo.mnist_linear(), tiny_data_dir, require_isolation=BOTH)
    assert card["valid"] is True, card["error"]
    sandbox = card["sandbox"]
    assert sandbox["worker_uid"] == 0 and sandbox["user"] == "nobody" and sandbox["uid"] == 65534
    assert sandbox["network_isolated"] is True
    assert sandbox["network_method"] == "network namespace"
    assert list(sandbox["require_isolation"]) == list(BOTH)


def _sandboxed_connect(limits: SandboxLimits, port: int) -> dict:
    """In a fresh interpreter: the child's lock-down (limits, then the drop to nobody), then a TCP
    connection to a port listening on this machine's loopback."""
    code = f"""
import encodings.idna, json, os, socket  # idna: nobody cannot read this Python's lazy imports
from evaluator.sandbox import apply_child_limits, lock_down_user
limits = json.loads({json.dumps(json.dumps(limits.to_dict()))})
report = apply_child_limits(limits)
lock_down_user(limits, report)
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    error = None
except OSError as exc:
    error = exc.errno
print(json.dumps({{"report": report, "error": error, "uid": os.getuid()}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd="/", env=_child_env())
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@needs_root
def test_a_sandboxed_child_cannot_reach_a_local_listening_port():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        limits = SandboxLimits(timeout_s=10, memory_limit_mb=512).resolved()
        isolated = _sandboxed_connect(limits, port)
        # The control: the same child without the namespace does reach it (the test can fail).
        open_child = _sandboxed_connect(dataclasses.replace(limits, isolate_network=False), port)
    finally:
        server.close()
    assert isolated["report"]["network_isolated"] is True and isolated["uid"] == 65534
    assert isolated["error"] is not None  # ENETUNREACH: an empty namespace has no usable route
    assert open_child["error"] is None and open_child["uid"] == 65534


@needs_root
def test_the_start_probe_reports_and_refuses():
    report = check_isolation(SandboxLimits(timeout_s=10, require_isolation=BOTH))
    assert report["network_isolated"] is True and report["uid"] == 65534
    with pytest.raises(IsolationUnavailable, match="privilege drop did not happen"):
        check_isolation(SandboxLimits(timeout_s=10, drop_privileges=False,
                                      require_isolation=("user",)))
    # Only a report: nothing required, nothing refused.
    assert probe_isolation(SandboxLimits(timeout_s=10, isolate_network=False))[
        "network_isolated"] is False


def test_the_validation_child_refuses_without_a_required_isolation():
    weak = dataclasses.replace(validation_limits(timeout_s=30, require_isolation=("network",)),
                               isolate_network=False)
    with pytest.raises(IsolationUnavailable, match="network namespace"):
        validate_isolated(model_zoo.mnist_linear(), "mnist", limits=weak)


@needs_root
def test_the_validation_child_checks_the_file_as_nobody_when_required():
    report = validate_isolated(model_zoo.mnist_linear(), "mnist",
                               limits=validation_limits(timeout_s=30, require_isolation=BOTH))
    assert report.ok, report.summary()
