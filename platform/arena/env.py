"""Reading the platform's settings from the environment: one way to parse each kind of value.

Every ``ARENA_*`` and Django setting that comes from the environment goes through these helpers, so
a bad value fails at start-up with the variable's name and what was expected, never deep inside a
request. Nothing here (or in ``settings.py``) touches the disk: folders are created where they are
first needed (artifact storage, the Celery app for the filesystem broker, ``manage.py demo``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    return None if value is None else value.strip()


def string(name: str, default: str = "", environ: Mapping[str, str] | None = None) -> str:
    """The variable's text; ``default`` when unset or blank."""
    value = _raw(name, environ)
    return value if value else default


def required(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The variable's text; ImproperlyConfigured naming it when unset or blank."""
    value = string(name, "", environ)
    if not value:
        raise ImproperlyConfigured(f"{name} is required by the settings chosen (it is not set)")
    return value


def boolean(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use true/false (or 1/0)")


def integer(name: str, default: int | None, environ: Mapping[str, str] | None = None) -> int | None:
    value = _raw(name, environ)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None


def number(name: str, default: float, environ: Mapping[str, str] | None = None) -> float:
    value = _raw(name, environ)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None


def string_list(name: str, default: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """A comma-separated list (blank items dropped)."""
    value = _raw(name, environ)
    text = default if value is None else value
    return [item.strip() for item in text.split(",") if item.strip()]


def path(name: str, default: Path | str, environ: Mapping[str, str] | None = None) -> Path:
    """An absolute path (not created: see the module docstring)."""
    return Path(string(name, "", environ) or default).expanduser().resolve()


def secret_key(debug: bool, environ: Mapping[str, str] | None = None) -> str:
    """``SECRET_KEY``; required unless ``debug``: a key everyone can read in the source signs
    sessions, CSRF tokens and password resets that anyone could then forge."""
    key = string("SECRET_KEY", "", environ)
    if key:
        return key
    if debug:
        return "insecure-development-key-for-DEBUG-only"
    raise ImproperlyConfigured(
        "SECRET_KEY is not set and DEBUG is off. Set SECRET_KEY to a long random string (for "
        "example: python -c 'import secrets; print(secrets.token_urlsafe(50))'), or set DEBUG=true "
        "for a development run."
    )
