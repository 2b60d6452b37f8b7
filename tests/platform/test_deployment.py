"""Deployment files and settings: docker-compose.yml (parsed; no Docker engine here), the
Dockerfile, environment-driven settings, the management commands."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from competitions.models import Competition
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.conftest import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def command_of(service: str) -> str:
    command = SERVICES[service]["command"]
    return command if isinstance(command, str) else " ".join(command)


def test_compose_runs_web_worker_beat_on_postgres_and_redis():
    assert {"web", "worker", "beat", "redis", "postgres"} <= set(SERVICES)
    assert "gunicorn arena.wsgi" in command_of("web") and "migrate" in command_of("web")
    assert "celery" in command_of("worker") and " worker" in command_of("worker")
    assert "celery" in command_of("beat") and " beat" in command_of("beat")
    assert SERVICES["postgres"]["image"].startswith("postgres")
    assert SERVICES["redis"]["image"].startswith("redis")
    for name in ("web", "worker", "beat"):
        service = SERVICES[name]
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:")
        assert "SECRET_KEY" in env and env["DEBUG"] == "false"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["build"] == "."
    for name in ("postgres", "redis"):
        assert SERVICES[name]["healthcheck"]["test"]


def test_compose_volumes_hold_datasets_and_state_and_artifacts_live_in_the_object_store():
    assert {"datasets", "postgres", "redis", "minio"} <= set(COMPOSE["volumes"])
    env = SERVICES["web"]["environment"]
    data = env["ARENA_DATA_DIR"]

    def mounts(service):
        return {v.split(":")[1]: v.split(":")[0] for v in SERVICES[service].get("volumes", [])}

    assert mounts("worker")[data] == "datasets"
    assert data not in mounts("web")  # the web never holds the hidden data
    assert mounts("postgres")["/var/lib/postgresql/data"] == "postgres"
    # Uploads go to MinIO's bucket, which web and workers reach over the network: no service
    # shares a disk with another, so a worker can run on another host (docs/deploy.md).
    assert SERVICES["minio"]["image"].startswith("minio/minio")
    assert "ports" not in SERVICES["minio"]  # never reachable from a browser
    for name in ("web", "worker", "validator"):
        env = SERVICES[name]["environment"]
        assert env["ARENA_ARTIFACT_STORAGE"] == "s3"
        assert env["ARENA_S3_ENDPOINT_URL"] == "http://minio:9000"
        assert "artifacts" not in {v.split(":")[0] for v in SERVICES[name].get("volumes", [])}
        assert SERVICES[name]["depends_on"]["minio-bucket"]["condition"] == (
            "service_completed_successfully")


def test_dockerfile_builds_the_platform_and_drops_root():
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11" in text
    assert "pip install --no-cache-dir '.[platform]'" in text
    assert "\nUSER arena" in text
    assert "PYTHONPATH=/app:/app/platform" in text
    # Everything the compose file runs exists in the image.
    for path in ("manage.py", "platform", "submissions", "evaluator", "reference_models"):
        assert f"COPY {path} " in text


def test_platform_folder_is_a_source_root_not_a_package():
    assert not (REPO_ROOT / "platform" / "__init__.py").exists()
    probe = ("import platform, sys; sys.path[:0] = ['.', 'platform']; import arena.settings; "
             "import platform as p; print(p.python_version())")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ".".join(map(str, sys.version_info[:3]))


def test_settings_come_from_the_environment(tmp_path):
    probe = ("from django.conf import settings as s; import django; django.setup(); "
             "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], "
             "s.CELERY_BROKER_URL, s.ARENA_ARTIFACT_DIR, s.DEBUG, s.ALLOWED_HOSTS, s.SECRET_KEY, "
             "s.ARENA_DATA_DIR)")
    base = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "ARENA_DATA_DIR")}
    base.update(PYTHONPATH=f"{REPO_ROOT}:{REPO_ROOT / 'platform'}",
                DJANGO_SETTINGS_MODULE="arena.settings", ARENA_VAR_DIR=str(tmp_path / "var"))

    def settings_with(**env):
        result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, text=True,
                                capture_output=True, env={**base, **env})
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    default = settings_with()
    assert default[0] == "django.db.backends.sqlite3"
    assert default[1] == str(tmp_path / "var" / "arena.sqlite3")
    assert default[2] == "filesystem://" and (tmp_path / "var" / "broker" / "queue").is_dir()
    assert default[3] == str(tmp_path / "var" / "artifacts") and default[4] == "False"
    configured = settings_with(
        DATABASE_URL="postgres://u:p@db:5432/x", CELERY_BROKER_URL="redis://r:6379/1",
        ARENA_ARTIFACT_DIR=str(tmp_path / "a"), DEBUG="true", ALLOWED_HOSTS="arena.example",
        SECRET_KEY="s3cret", ARENA_DATA_DIR=str(tmp_path / "d"),
    )
    assert configured == ["django.db.backends.postgresql", "x", "redis://r:6379/1",
                          str(tmp_path / "a"), "True", "['arena.example']", "s3cret",
                          str(tmp_path / "d")]


@pytest.mark.django_db
def test_create_user_prints_a_working_token(capsys):
    call_command("create_user", "zoe", "--role", "instructor")
    token = capsys.readouterr().out.strip()
    from rest_framework.authtoken.models import Token

    user = Token.objects.get(key=token).user
    assert user.username == "zoe" and user.is_staff and user.profile.role == "instructor"
    call_command("create_user", "sam")
    assert Token.objects.get(key=capsys.readouterr().out.strip()).user.profile.role == "student"


@pytest.mark.django_db
def test_create_competition_defaults_and_options(capsys, make_user):
    make_user("teacher", "instructor")
    call_command("create_competition", "spring", "--title", "Spring", "--organizer", "teacher")
    spring = Competition.objects.get(slug="spring")
    assert sorted(t.task for t in spring.tracks.all()) == ["cifar10", "mnist", "tinygpt"]
    assert spring.is_open() and (spring.deadline - spring.start).days == 30
    mnist = spring.tracks.get(task="mnist")
    assert (mnist.max_size_bytes, mnist.max_latency_ms) == (10_000_000, 100.0)
    assert [u.username for u in spring.organizers.all()] == ["teacher"]
    call_command("create_competition", "fall", "--title", "Fall", "--tracks", "mnist",
                 "--max-latency-ms", "5", "--daily-limit", "2", "--deadline", "2099-01-01",
                 "--unlisted")
    fall = Competition.objects.get(slug="fall")
    track = fall.tracks.get()
    assert (track.max_latency_ms, track.daily_limit, fall.visibility) == (5.0, 2, "unlisted")
    assert fall.deadline.year == 2099
    with pytest.raises(CommandError, match="unknown task 'mnst'"):
        call_command("create_competition", "bad", "--title", "Bad", "--tracks", "mnst")
    with pytest.raises(CommandError, match="exists already"):
        call_command("create_competition", "fall", "--title", "Again")


def test_a_server_error_is_logged_with_its_traceback_to_stderr_when_debug_is_off(tmp_path):
    # A view that fails before touching the database, served as in production (DEBUG off):
    # Django's default logging sends such errors only to the (unconfigured) admins' mail.
    probe = ("import django; django.setup(); from django.test import Client; import api.views as v\n"
             "def broken(self): raise RuntimeError('boom-7f3a')\n"
             "v.CompetitionList.get_queryset = broken\n"
             "r = Client(raise_request_exception=False).get('/api/competitions/')\n"
             "print(r.status_code)")
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'platform'}",
           "DJANGO_SETTINGS_MODULE": "arena.settings", "DEBUG": "0", "SECRET_KEY": "x" * 50,
           "ARENA_VAR_DIR": str(tmp_path / "var")}
    env.pop("DATABASE_URL", None)
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, text=True,
                            capture_output=True, env=env, timeout=120)
    assert result.stdout.strip() == "500", result.stderr
    assert "Internal Server Error: /api/competitions/" in result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: boom-7f3a" in result.stderr


# --- The sandbox in the shipped container (issue 10 item 9). No Docker engine here: the files are
# parsed and their settings checked; what the kernel and Docker do with them is in
# tests/evaluator/test_sandbox.py (as root, outside a container) and docs/platform.md.

SANDBOXED = ("worker", "validator")  # the services that run untrusted models in a sandbox child


def test_the_workers_start_as_root_with_only_sys_admin_added():
    for name in SANDBOXED:
        service = SERVICES[name]
        # Root at start: only root can drop the sandbox child to nobody.
        assert str(service["user"]) in ("0", "0:0", "root"), name
        # unshare(CLONE_NEWNET) needs CAP_SYS_ADMIN, and Docker's default seccomp profile allows
        # unshare only to a container holding it; nothing broader than that one capability.
        assert service["cap_add"] == ["SYS_ADMIN"], name
        assert not service.get("privileged"), name
        options = service.get("security_opt", [])
        assert "no-new-privileges:true" in options, name
        assert not any("unconfined" in option for option in options), name
        assert "ARENA_REQUIRE_ISOLATION" not in service["environment"]  # production's default: on
        assert service["environment"]["DEBUG"] == "false"
    assert SERVICES["validator"]["environment"]["ARENA_WORKER_ROLE"] == "validate"


def test_the_web_and_beat_stay_unprivileged():
    for name in ("web", "beat"):
        service = SERVICES[name]
        assert "user" not in service and "cap_add" not in service, name  # the image's USER arena
        assert not service.get("privileged"), name
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert text.rstrip().splitlines()[-1].startswith("CMD [\"gunicorn\"")
    assert text.index("\nUSER arena") > text.index("useradd")


def _isolation_setting(tmp_path, **env) -> str:
    probe = "import django; django.setup(); from django.conf import settings as s; " \
            "print(','.join(s.ARENA_REQUIRE_ISOLATION) or 'none')"
    base = {k: v for k, v in os.environ.items()
            if k not in ("PYTEST_VERSION", "DEBUG", "ARENA_REQUIRE_ISOLATION", "DATABASE_URL")}
    base.update(PYTHONPATH=f"{REPO_ROOT}:{REPO_ROOT / 'platform'}", SECRET_KEY="k" * 50,
                DJANGO_SETTINGS_MODULE="arena.settings", ARENA_VAR_DIR=str(tmp_path / "var"))
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, text=True,
                            capture_output=True, env={**base, **env}, timeout=120)
    assert result.returncode == 0 or not result.stdout, result.stderr
    return result.stdout.strip() or result.stderr


def test_production_settings_require_both_isolations(tmp_path):
    assert _isolation_setting(tmp_path, DEBUG="false") == "network,user"
    assert _isolation_setting(tmp_path) == "network,user"  # DEBUG is off unless asked for
    assert _isolation_setting(tmp_path, DEBUG="true") == "none"
    assert _isolation_setting(tmp_path, DEBUG="false", ARENA_REQUIRE_ISOLATION="network") == "network"
    assert _isolation_setting(tmp_path, DEBUG="false", ARENA_REQUIRE_ISOLATION="none") == "none"
    # A typo never silently weakens the sandbox: the settings refuse to load.
    assert "unknown isolation netwrk" in _isolation_setting(
        tmp_path, DEBUG="false", ARENA_REQUIRE_ISOLATION="netwrk,user")


def test_the_demo_workers_require_no_isolation(monkeypatch, tmp_path, settings):
    from submissions.management.commands import demo

    started = []

    class Recorded:
        def __init__(self, command, **kwargs):
            started.append((command, kwargs["env"]))

    monkeypatch.setattr(demo.subprocess, "Popen", Recorded)
    monkeypatch.delenv("ARENA_REQUIRE_ISOLATION", raising=False)
    settings.VAR_DIR = tmp_path
    demo.Command().start_services(tmp_path / "data", "127.0.0.1", 18799)
    assert len(started) == 3
    assert {env["ARENA_REQUIRE_ISOLATION"] for _, env in started} == {"none"}
