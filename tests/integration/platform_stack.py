"""Real platform processes for integration tests: Celery workers and the gunicorn web server.

Each process gets its own environment (database URL, broker URL, data and artifact directories),
runs in its own process group so a test can SIGKILL it with everything it started, and logs to a
file the test prints when something goes wrong.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO_ROOT

VENV_BIN = Path(sys.executable).parent
# Settings the parent test process may carry that must not leak into a stack's environment.
_OWN_SETTINGS = ("DATABASE_URL", "CELERY_BROKER_URL", "ARENA_VAR_DIR", "ARENA_ARTIFACT_DIR",
                 "ARENA_DATA_DIR", "ARENA_CELERY_QUEUE", "ARENA_WORKER_ROLE", "DJANGO_SETTINGS_MODULE")


def stack_env(**settings: str) -> dict[str, str]:
    """The parent's environment minus platform settings, plus ``settings``."""
    env = {key: value for key, value in os.environ.items() if key not in _OWN_SETTINGS}
    env.update(
        PYTHONPATH=f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'platform'}",
        DJANGO_SETTINGS_MODULE="arena.settings",
        ARENA_LATENCY_PROTOCOL="quick",
        PYTHONUNBUFFERED="1",
        # Production-like: DEBUG off, so a real key (required then).
        SECRET_KEY="integration-test-secret-key-" + "k" * 30,
    )
    env.update({key: str(value) for key, value in settings.items()})
    return env


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = open(log, "ab")  # noqa: SIM115 - the child owns it for its lifetime
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=handle,
                            stderr=subprocess.STDOUT, start_new_session=True)


def start_worker(env: dict[str, str], log: Path, *, beat: bool = False,
                 hostname: str | None = None) -> subprocess.Popen:
    command = [str(VENV_BIN / "celery"), "--workdir", "platform", "-A", "arena", "worker",
               "--loglevel", "INFO", "--concurrency", "1", "--without-gossip", "--without-mingle",
               "--without-heartbeat"]
    if hostname:
        command += ["--hostname", hostname]
    if beat:
        command += ["--beat", "--schedule", str(log.with_suffix(".beat"))]
    return _spawn(command, env, log)


def start_validator(env: dict[str, str], log: Path, *, beat: bool = False,
                    concurrency: int = 2) -> subprocess.Popen:
    """A worker of the validation queue (``ARENA_WORKER_ROLE=validate``); with ``beat``, beat's
    sweep runs in it too (its task goes to the validation queue)."""
    command = [str(VENV_BIN / "celery"), "--workdir", "platform", "-A", "arena", "worker",
               "--loglevel", "INFO", "--concurrency", str(concurrency), "--without-gossip",
               "--without-mingle", "--without-heartbeat", "--hostname", f"validate-{log.stem}@%h"]
    if beat:
        command += ["--beat", "--schedule", str(log.with_suffix(".beat"))]
    return _spawn(command, {**env, "ARENA_WORKER_ROLE": "validate"}, log)


def start_web(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    command = [str(VENV_BIN / "gunicorn"), "arena.wsgi", "--pythonpath", "platform",
               "--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "120"]
    return _spawn(command, env, log)


def run_manage(env: dict[str, str], *args: str, timeout: float = 120):
    """Run ``manage.py`` with ``env``; the completed process (output captured as text)."""
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def manage(env: dict[str, str], *args: str) -> str:
    """Run ``manage.py`` with ``env`` and return its standard output (fail on an error)."""
    result = run_manage(env, *args)
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the process and everything in its process group (no clean shutdown)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        kill(process)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], object], timeout: float, what: str, logs: tuple[Path, ...] = (),
             every: float = 0.05):
    """Poll ``check`` until it returns something truthy; fail with the logs after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    tails = "\n".join(f"--- {log}\n{log.read_text(errors='replace')[-4000:]}"
                      for log in logs if log.exists())
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


def redis_available(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def database_url_of(settings_dict: dict) -> str:
    """The URL of the database Django is connected to (the test database during a test)."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"
