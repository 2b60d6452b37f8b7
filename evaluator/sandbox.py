"""Run the scoring child process under limits, and apply those limits inside the child.

Who enforces what (Linux):

- the parent (this module, ``run_child``): a fresh empty working directory per run; a scrubbed
  environment (no secrets of the worker); a new session, so the child leads its own process group;
  stage-aware wall-clock deadlines (``StageDeadlines``: the platform's for starting, the model's
  timeout, probe and budget), after which the WHOLE group gets SIGKILL (a hung inference call never
  returns to Python, so no in-child timer or signal handler could stop it);
- the child, at start, before it imports numpy/onnxruntime or reads the model
  (``apply_child_limits``): no network (a new, empty network namespace: ``unshare(CLONE_NEWNET)``,
  or with an unprivileged user namespace; whether it took effect is reported), RLIMIT_CORE = 0 (no
  core dumps), RLIMIT_NOFILE, RLIMIT_CPU (the kernel sends SIGXCPU, then SIGKILL), RLIMIT_AS (an
  allocation past the address-space cap fails inside onnxruntime instead of growing the machine's
  memory), and pinning to one core.

This module imports only the standard library: the child imports it before anything else.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import math
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
NOBODY = 65534
STDERR_TAIL_CHARS = 4000
# The evaluator package's parent folder: the child imports the very same evaluator code.
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


# What a worker may require of its children (``SandboxLimits.require_isolation``):
# - "network": the child is in a new, empty network namespace (no interface but a down loopback);
# - "user": the model runs as ``nobody``, not as root and not as the worker's own user (which
#   needs the worker to start as root: only root can change its uid).
ISOLATIONS = ("network", "user")


class IsolationUnavailable(RuntimeError):
    """A required isolation did not take effect in the child: the worker is misconfigured (the
    platform's fault, never the model's). No model byte was read."""


def parse_isolations(text: str) -> tuple[str, ...]:
    """``"network,user"`` (or spaces) as a tuple; ``""``/``"none"``/``"off"`` as ``()``."""
    names = tuple(name for name in text.replace(",", " ").split() if name)
    if names in ((), ("none",), ("off",)):
        return ()
    unknown = sorted(set(names) - set(ISOLATIONS))
    if unknown:
        raise ValueError(f"unknown isolation {', '.join(unknown)}; the isolations are: "
                         f"{', '.join(ISOLATIONS)} (or none)")
    return tuple(dict.fromkeys(names))


def missing_isolation(required, report: dict) -> list[str]:
    """What of ``required`` the child's sandbox ``report`` lacks, each as a sentence (empty: all
    in place). Fails closed: a report without the key counts as missing."""
    missing = []
    if "network" in required and not report.get("network_isolated"):
        missing.append("network: the child could not enter a new network namespace "
                       "(unshare(CLONE_NEWNET) was refused: the container needs CAP_SYS_ADMIN "
                       "for the worker, or a seccomp profile and kernel that allow it)")
    if "user" in required and (report.get("user") != "nobody" or report.get("uid") in (None, 0)):
        uid = report.get("worker_uid")
        why = ("the worker does not run as root, so the model would run as the worker's own "
               f"user (uid {uid})") if uid not in (None, 0) else "the privilege drop did not happen"
        missing.append(f"user: the model would not run as nobody: {why}")
    return missing


def isolation_message(missing: list[str]) -> str:
    return ("The sandbox's required isolation is unavailable on this worker, so it refuses to run "
            "the model (ARENA_REQUIRE_ISOLATION): " + "; ".join(missing))


def default_cpu() -> int:
    """The core scoring children are pinned to: ``ARENA_SCORING_CPU``, else the last allowed core."""
    configured = os.environ.get("ARENA_SCORING_CPU")
    if configured is not None:
        return int(configured)
    if not hasattr(os, "sched_getaffinity"):  # macOS: no core pinning
        return 0
    return max(os.sched_getaffinity(0))


@dataclass(frozen=True)
class SandboxLimits:
    """The limits of one scoring child. ``cpu_seconds`` defaults to the wall-clock timeout."""

    timeout_s: float = 600.0
    memory_limit_mb: int = 4096
    cpu_seconds: int | None = None
    open_files: int = 64
    cpu: int | None = None
    isolate_network: bool = True
    # When started as root, run the model as ``nobody``.
    drop_privileges: bool = True
    # The nice value the parent gives the child's main thread (where the single-threaded inference
    # runs) for the timing stages, when it may (root or CAP_SYS_NICE): on a busy core the child
    # then gets most of the time slices, so fewer timed runs are cut by another process. None: off.
    timing_nice: int | None = -10
    # The isolations the run must have (``ISOLATIONS``): the child checks what took effect and
    # refuses before it reads the model if one is missing (``missing_isolation``); the caller
    # then raises ``IsolationUnavailable``, a platform error. Empty: report only (the demo, tests).
    require_isolation: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.require_isolation) - set(ISOLATIONS))
        if unknown:
            raise ValueError(f"unknown isolation {', '.join(unknown)}; the isolations are: "
                             f"{', '.join(ISOLATIONS)}")

    def resolved(self) -> SandboxLimits:
        cpu_seconds = self.cpu_seconds or max(1, math.ceil(self.timeout_s))
        cpu = default_cpu() if self.cpu is None else self.cpu
        return dataclasses.replace(self, cpu_seconds=cpu_seconds, cpu=cpu)

    def to_dict(self) -> dict:
        """JSON-ready: the scorecard records it, and a tuple would come back from JSON a list."""
        values = asdict(self)
        values["require_isolation"] = list(self.require_isolation)
        return values


@dataclass
class ChildOutcome:
    """What came back from one child run."""

    result: dict | None
    stages: list[dict] = field(default_factory=list)
    returncode: int | None = None
    timed_out: bool = False
    stderr_tail: str = ""
    wall_seconds: float = 0.0
    # Which deadline ended the run ("startup", "probe", "budget" or "timeout"), and its length.
    expired: str | None = None
    expired_after_s: float | None = None
    # Seconds from the child's "ready" line to its end (the model's time), and the budget set.
    model_seconds: float | None = None
    time_budget_s: float | None = None
    # The nice value the timing stages ran at (None: not raised).
    timing_nice: int | None = None

    @property
    def killed_by(self) -> int | None:
        """The signal that ended the child, if one did."""
        if self.returncode is not None and self.returncode < 0:
            return -self.returncode
        return None

    @property
    def last_stage(self) -> str | None:
        return self.stages[-1].get("stage") if self.stages else None

    def stage_info(self, key: str):
        """The latest value of ``key`` reported by any stage line (e.g. the sandbox report)."""
        for stage in reversed(self.stages):
            if key in stage:
                return stage[key]
        return None


def _child_env() -> dict[str, str]:
    """A minimal environment: nothing of the worker's (database URLs, keys) reaches the child."""
    return {
        "PATH": os.defpath,
        "PYTHONPATH": _PACKAGE_ROOT,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _parse_line(line: bytes) -> dict | None:
    try:
        message = json.loads(line.decode("utf-8", "replace"))
    except json.JSONDecodeError:
        return None
    return message if isinstance(message, dict) else None


def _parse_lines(stdout: bytes) -> tuple[list[dict], dict | None]:
    """Stage lines and the final result line (``{"result": ...}``) the child wrote."""
    stages: list[dict] = []
    result = None
    for line in stdout.splitlines():
        message = _parse_line(line)
        if message is None:
            continue
        if "result" in message:
            result = message["result"]
        else:
            stages.append(message)
    return stages, result


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# Stages before the model runs: their deadline is the platform's (a slow start on a busy machine is
# neither the model's fault nor counted against its time).
PLATFORM_STAGES = frozenset({"started", "ready"})
# Stages that time the model (the parent raises their priority, see ``SandboxLimits.timing_nice``).
TIMING_STAGES = frozenset({"throughput", "latency", "calibrating"})
DEFAULT_STARTUP_S = 180.0


@dataclass(frozen=True)
class StageDeadlines:
    """The deadlines ``run_child`` enforces as the child's stage lines arrive.

    - ``startup_s`` (the platform's): from the start of the process until its ``ready`` line
      (interpreter start, imports, memory-mapping the hidden data);
    - the model's ``limits.timeout_s``: from ``ready`` until the result;
    - ``probe_s`` (the model's): the ``probe`` stage, one batch-1 inference;
    - ``budget`` (the model's): called with the first stage line after the probe (which carries the
      probe's measured time); the seconds it returns, from then on, bound the rest of the run.
    Every deadline of the model is capped by ``timeout_s``.
    """

    startup_s: float = DEFAULT_STARTUP_S
    probe_s: float | None = None
    budget: Callable[[dict], float | None] | None = None


class _Tail:
    """Collects a stream in a thread, keeping its last ``limit`` bytes."""

    def __init__(self, stream, limit: int) -> None:
        self.data = bytearray()
        self._stream = stream
        self._limit = limit
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self._stream.read1(65536):
                self.data += chunk
                if len(self.data) > 2 * self._limit:
                    del self.data[: -self._limit]


def _feed(stream, payload: bytes) -> None:
    """Writes the model to the child's stdin (it reads it only once ready) and closes it."""
    with contextlib.suppress(OSError, ValueError):
        stream.write(payload)
    with contextlib.suppress(OSError, ValueError):
        stream.close()


class _Watch:
    """Which deadline is running, as the stage lines come in."""

    def __init__(self, limits: SandboxLimits, deadlines: StageDeadlines, started: float):
        self.limits = limits
        self.deadlines = deadlines
        self.started = started
        self.kind = "startup"
        self.seconds = deadlines.startup_s
        self.at = started + deadlines.startup_s
        self.model_started: float | None = None
        self.model_end = math.inf
        self.budget_s: float | None = None
        self.budget_end = math.inf
        self._after_probe = False

    def _arm(self, kind: str, at: float, seconds: float) -> None:
        """Run deadline ``kind`` until ``at``, unless the model's whole timeout ends sooner."""
        if at < self.model_end:
            self.kind, self.at, self.seconds = kind, at, seconds
        else:
            self.kind, self.at, self.seconds = "timeout", self.model_end, self.limits.timeout_s

    def stage(self, message: dict, now: float) -> None:
        name = message.get("stage")
        if name == "started":
            return
        if self.model_started is None:  # "ready" (or a first model stage): the model's clock starts
            self.model_started = now
            self.model_end = now + self.limits.timeout_s
        if name == "probe" and self.deadlines.probe_s is not None:
            self._after_probe = True
            self._arm("probe", now + self.deadlines.probe_s, self.deadlines.probe_s)
            return
        if self._after_probe:
            self._after_probe = False
            budget = self.deadlines.budget(message) if self.deadlines.budget else None
            if budget is not None:
                self.budget_s, self.budget_end = budget, now + budget
        self._arm("budget", self.budget_end, self.budget_s or 0.0)


def _raise_priority(pid: int, nice: int | None) -> int | bool:
    """Set thread ``pid``'s nice value; the value, or False if not allowed (checked once)."""
    if nice is None or not hasattr(os, "setpriority"):
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except OSError:  # no CAP_SYS_NICE (not root, or a container without it), or already gone
        return False
    return nice


def run_child(
    job: dict, payload: bytes, limits: SandboxLimits, deadlines: StageDeadlines | None = None
) -> ChildOutcome:
    """Run ``python -m evaluator._child`` on ``job`` with ``payload`` (the model bytes) on stdin.

    Reads the child's stage lines as they arrive and kills its whole process group when the
    running stage's deadline passes (``StageDeadlines``); a hung inference never returns to Python,
    so only the parent can end it. Raises ``OSError`` only if the child cannot be started at all.
    """
    limits = limits.resolved()
    deadlines = deadlines or StageDeadlines()
    message = json.dumps({**job, "limits": {**limits.to_dict(), "parent_pid": os.getpid()}})
    stages: list[dict] = []
    result = None
    with tempfile.TemporaryDirectory(prefix="arena-score-") as workdir:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-s", "-m", "evaluator._child", message],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env=_child_env(),
            start_new_session=True,
            close_fds=True,
        )
        watch = _Watch(limits, deadlines, started)
        expired: str | None = None
        stderr = _Tail(process.stderr, STDERR_TAIL_CHARS)
        feeder = threading.Thread(target=_feed, args=(process.stdin, payload), daemon=True)
        feeder.start()
        buffered = b""
        timing_nice: int | bool | None = None
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                while True:
                    now = time.monotonic()
                    if now >= watch.at:
                        expired = watch.kind
                        break
                    if not selector.select(timeout=watch.at - now):
                        continue
                    chunk = os.read(process.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    buffered += chunk
                    *lines, buffered = buffered.split(b"\n")
                    arrived = time.monotonic()
                    for line in lines:
                        parsed = _parse_line(line)
                        if parsed is None:
                            continue
                        if "result" in parsed:
                            result = parsed["result"]
                        else:
                            parsed.setdefault("at_s", arrived - started)
                            stages.append(parsed)
                            watch.stage(parsed, arrived)
                            if parsed.get("stage") in TIMING_STAGES and timing_nice is None:
                                timing_nice = _raise_priority(process.pid, limits.timing_nice)
            if expired is None:
                # stdout closed: the child is exiting; it gets until the running deadline.
                try:
                    process.wait(timeout=max(0.0, watch.at - time.monotonic()) + 1)
                except subprocess.TimeoutExpired:
                    expired = watch.kind if result is None else None
        finally:
            # Nothing the child started may outlive it.
            _kill_group(process)
            process.wait()
            stderr.thread.join(timeout=5)
            feeder.join(timeout=5)
            with contextlib.suppress(OSError):
                process.stdout.close()
        wall = time.monotonic() - started
    if buffered.strip():
        parsed = _parse_line(buffered)
        if parsed is not None and "result" in parsed:
            result = parsed["result"]
    model_seconds = None
    if watch.model_started is not None:
        model_seconds = started + wall - watch.model_started
    return ChildOutcome(
        result=result,
        stages=stages,
        returncode=process.returncode,
        timed_out=expired is not None,
        stderr_tail=bytes(stderr.data).decode("utf-8", "replace")[-STDERR_TAIL_CHARS:],
        wall_seconds=wall,
        expired=expired,
        expired_after_s=watch.seconds if expired else None,
        model_seconds=model_seconds,
        time_budget_s=watch.budget_s,
        timing_nice=timing_nice if timing_nice is not False else None,
    )


def _unshare(flags: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.unshare(flags) == 0
    except (OSError, AttributeError):  # not Linux
        return False


def drop_network() -> str | None:
    """Move this process into a new, empty network namespace; how, or None if the OS refused.

    Needs CAP_SYS_ADMIN, or unprivileged user namespaces (then only while single-threaded, which
    is why the child calls this before importing numpy).
    """
    if _unshare(CLONE_NEWNET):
        return "network namespace"
    if _unshare(CLONE_NEWUSER | CLONE_NEWNET):
        return "user and network namespace"
    return None


def die_with_parent(parent_pid: int | None) -> bool:
    """Have the kernel SIGKILL this process when its parent dies; whether that took effect.

    A scorer that is killed (a worker restart, ``kill -9``, a CLI stopped by ``timeout``) must not
    leave its child running a model on the scoring core for the rest of its budget. Linux clears the
    setting when the credentials change, so ``drop_privileges`` sets it again. If the parent died
    before this call (the child was already re-parented), the child ends itself at once.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        armed = False
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)
    return armed


def drop_privileges() -> str | None:
    """Become ``nobody`` if running as root; the user name taken, or None if nothing changed.

    Called after the hidden data is memory-mapped and every module is imported, just before the
    model is read: the model then runs without root's access to the machine's files.
    """
    if not hasattr(os, "getuid") or os.getuid() != 0:
        return None
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    # setuid clears the dumpable flag, which makes /proc/self root-owned; the peak-memory reset
    # needs /proc/self/clear_refs. RLIMIT_CORE = 0 still forbids core dumps.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    die_with_parent(None)  # the credential change cleared it
    return "nobody"


def lock_down_user(limits: dict, report: dict) -> None:
    """Drop root if the limits say so, recording the user and uids in ``report`` (see
    ``missing_isolation``)."""
    if limits.get("drop_privileges", True):
        report["user"] = drop_privileges()
    else:
        report.setdefault("user", None)
    if hasattr(os, "getuid"):
        report["uid"] = os.getuid()


def apply_child_limits(limits: dict) -> dict:
    """Apply ``SandboxLimits`` (as a dict) to the current process; report what took effect."""
    report: dict = {"network_isolated": False, "network_method": None,
                    "worker_uid": os.getuid() if hasattr(os, "getuid") else None,
                    "dies_with_parent": die_with_parent(limits.get("parent_pid"))}
    if limits.get("isolate_network", True):
        method = drop_network()
        report.update(network_isolated=method is not None, network_method=method)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"], limits["open_files"]))
    cpu_seconds = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    address_space = int(limits["memory_limit_mb"]) * 2**20
    try:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        report["address_space_mb"] = int(limits["memory_limit_mb"])
    except (ValueError, OSError):  # macOS refuses RLIMIT_AS
        report["address_space_mb"] = None
    try:
        os.sched_setaffinity(0, {int(limits["cpu"])})
        report["pinned_cpu"] = int(limits["cpu"])
    except (OSError, AttributeError):  # no such core, or no affinity API (macOS)
        report["pinned_cpu"] = None
    report.update(
        working_directory_empty=not any(os.scandir(".")),
        cpu_seconds=cpu_seconds,
        open_files=int(limits["open_files"]),
        core_dumps=False,
        timeout_s=float(limits["timeout_s"]),
    )
    return report


def probe_isolation(limits: SandboxLimits | None = None, timeout_s: float = 30.0) -> dict:
    """Start a tiny child under ``limits`` (nothing but ``apply_child_limits`` and the privilege
    drop, about 0.1 s) and return its sandbox report; a worker calls it at start so that a
    misconfigured container says so at once, not at the first upload."""
    limits = (limits or SandboxLimits(timeout_s=timeout_s)).resolved()
    message = json.dumps({**limits.to_dict(), "parent_pid": os.getpid()})
    with tempfile.TemporaryDirectory(prefix="arena-probe-") as workdir:
        done = subprocess.run([sys.executable, "-s", "-m", "evaluator.sandbox", message],
                              capture_output=True, cwd=workdir, env=_child_env(),
                              timeout=timeout_s, start_new_session=True)
    stages, _ = _parse_lines(done.stdout)
    if not stages:
        raise IsolationUnavailable("the isolation probe child gave no report (exit code "
                                   f"{done.returncode}): {done.stderr.decode(errors='replace')[-500:]}")
    return stages[-1]


def check_isolation(limits: SandboxLimits) -> dict:
    """``probe_isolation``, raising ``IsolationUnavailable`` if a required isolation is missing."""
    report = probe_isolation(limits)
    missing = missing_isolation(limits.require_isolation, report)
    if missing:
        raise IsolationUnavailable(isolation_message(missing))
    return report


def _probe_main(argv: list[str]) -> int:
    limits = json.loads(argv[0])
    report = apply_child_limits(limits)
    lock_down_user(limits, report)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_probe_main(sys.argv[1:]))
