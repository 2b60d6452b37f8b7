"""Settings: parsed by one helper (arena.env), no side effect at import, SECRET_KEY required when
DEBUG is off. Each probe is a fresh interpreter, as a web or worker process starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from arena import env
from django.core.exceptions import ImproperlyConfigured

from tests.conftest import REPO_ROOT

_PLATFORM_VARS = ("DATABASE_URL", "CELERY_BROKER_URL", "ARENA_DATA_DIR", "ARENA_ARTIFACT_DIR",
                  "ARENA_STATIC_ROOT", "SECRET_KEY", "DEBUG", "PYTEST_VERSION")


def probe(code: str, tmp_path, **environ: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in _PLATFORM_VARS}
    base.update(PYTHONPATH=f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'platform'}",
                DJANGO_SETTINGS_MODULE="arena.settings", ARENA_VAR_DIR=str(tmp_path / "var"))
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, text=True,
                          capture_output=True, env={**base, **environ}, timeout=120)


def test_debug_off_without_a_secret_key_refuses_to_start(tmp_path):
    result = probe("import arena.settings", tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set and DEBUG is off" in result.stderr
    key = probe("import arena.settings as s; print(s.SECRET_KEY)", tmp_path, SECRET_KEY="k" * 50)
    assert key.returncode == 0 and key.stdout.strip() == "k" * 50, key.stderr
    debug = probe("import arena.settings as s; print(s.DEBUG, len(s.SECRET_KEY) > 20)", tmp_path,
                  DEBUG="true")
    assert debug.stdout.split() == ["True", "True"], debug.stderr


def test_importing_the_settings_creates_no_folder(tmp_path):
    """Issue 11 item 6: the folders of the embedded default appear when Django starts."""
    result = probe("import arena.settings", tmp_path, SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "var").exists()
    started = probe("import django; django.setup()", tmp_path, SECRET_KEY="k" * 50)
    assert started.returncode == 0, started.stderr
    for folder in ("static", "broker/queue", "broker/control"):
        assert (tmp_path / "var" / folder).is_dir(), folder


def test_a_bad_value_names_its_variable(tmp_path):
    result = probe("import arena.settings", tmp_path, SECRET_KEY="k" * 50,
                   ARENA_SCORING_MAX_RETRIES="five")
    assert result.returncode != 0
    assert "ARENA_SCORING_MAX_RETRIES='five' is not a whole number" in result.stderr


def test_the_env_helpers():
    environ = {"A": " 3 ", "B": "off", "C": "a, b,,c", "D": "", "E": "2.5", "F": "maybe"}
    assert env.integer("A", 0, environ) == 3 and env.integer("D", 7, environ) == 7
    assert env.boolean("B", True, environ) is False and env.boolean("X", True, environ) is True
    assert env.string_list("C", "", environ) == ["a", "b", "c"]
    assert env.number("E", 0.0, environ) == 2.5 and env.string("D", "dflt", environ) == "dflt"
    with pytest.raises(ImproperlyConfigured, match="F='maybe' is not a boolean"):
        env.boolean("F", False, environ)
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set"):
        env.secret_key(False, {})
