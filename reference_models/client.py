"""HTTP client of the platform's REST API, used by ``arena submit`` and ``arena leaderboard``.

Where the server and token come from, first found wins:

1. ``--server`` / ``--token`` on the command line;
2. the environment variables ``ARENA_SERVER`` / ``ARENA_TOKEN``;
3. the config file ``~/.config/arena/config.json`` (``$XDG_CONFIG_HOME/arena/config.json``), e.g.
   ``{"server": "https://arena.example.edu", "token": "0123abcd..."}``.

Your token is on your profile page (or ask your instructor). It is sent as
``Authorization: Token <key>``; keep the config file private (``chmod 600``).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

TERMINAL_STATUSES = frozenset({"scored", "rejected", "failed", "over_limit"})
# Past its check (validation runs on the platform's workers after the upload has answered).
CHECKED_STATUSES = TERMINAL_STATUSES | {"queued", "scoring"}
DEFAULT_SERVER = "http://127.0.0.1:8000"


class ClientError(Exception):
    """Something a student can fix (wrong token, unknown competition, unreachable server...);
    ``status`` is the server's HTTP status when it answered with an error."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "arena" / "config.json"


@dataclass(frozen=True)
class Settings:
    server: str
    token: str | None


def resolve_settings(server: str | None = None, token: str | None = None,
                     environ: Mapping[str, str] | None = None,
                     path: Path | None = None) -> Settings:
    """The server and token to use (see the module docstring for the order)."""
    environ = os.environ if environ is None else environ
    path = path or config_path(environ)
    stored: dict = {}
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ClientError(f"cannot read the config file {path}: {error}") from error
        if not isinstance(stored, dict):
            raise ClientError(f"the config file {path} must hold a JSON object")
    chosen_server = server or environ.get("ARENA_SERVER") or stored.get("server") or DEFAULT_SERVER
    chosen_token = token or environ.get("ARENA_TOKEN") or stored.get("token")
    return Settings(chosen_server.rstrip("/"), chosen_token)


class _ProgressReader:
    """A request body that reports how much of it has been sent (requests reads it in blocks)."""

    def __init__(self, body: bytes, on_progress: Callable[[int], None] | None) -> None:
        self.body, self.position, self.on_progress = body, 0, on_progress

    def __len__(self) -> int:  # lets requests send a Content-Length instead of chunks
        return len(self.body)

    def read(self, size: int = -1) -> bytes:
        end = len(self.body) if size is None or size < 0 else self.position + size
        chunk = self.body[self.position:end]
        self.position += len(chunk)
        if self.on_progress is not None and chunk:
            self.on_progress(len(chunk))
        return chunk


def multipart_body(fields: Mapping[str, str], file_field: str, filename: str,
                   content: bytes) -> tuple[bytes, str]:
    """An in-memory multipart/form-data body and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    safe_name = filename.replace('"', "").replace("\r", "").replace("\n", "")
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
                 f'filename="{safe_name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode())
    parts.append(content)
    parts.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class ArenaClient:
    def __init__(self, settings: Settings, timeout: float = 60.0,
                 session: requests.Session | None = None) -> None:
        self.settings, self.timeout = settings, timeout
        self.session = session or requests.Session()

    def _headers(self, needs_token: bool) -> dict[str, str]:
        if self.settings.token:
            return {"Authorization": f"Token {self.settings.token}"}
        if needs_token:
            raise ClientError("no token: pass --token, set ARENA_TOKEN, or put \"token\" in "
                              f"{config_path()}")
        return {}

    def _request(self, method: str, path: str, *, needs_token: bool = True, **kwargs) -> dict:
        url = f"{self.settings.server}/api/{path.lstrip('/')}"
        headers = {**self._headers(needs_token), **kwargs.pop("headers", {})}
        try:
            response = self.session.request(method, url, headers=headers, timeout=self.timeout,
                                            **kwargs)
        except requests.RequestException as error:
            raise ClientError(f"cannot reach the server at {self.settings.server}: "
                              f"{type(error).__name__}") from error
        if response.status_code >= 400:
            raise ClientError(_error_message(response), status=response.status_code)
        try:
            return response.json()
        except ValueError as error:
            raise ClientError(f"the server at {self.settings.server} did not answer with JSON "
                              f"(is it the arena platform?)") from error

    # ----------------------------------------------------------------- API calls
    def upload(self, model: Path, competition: str, track: str,
               on_progress: Callable[[int], None] | None = None) -> dict:
        """Upload ``model``; the new submission (already ``rejected`` if validation refused it)."""
        content = Path(model).read_bytes()
        body, content_type = multipart_body({"competition": competition, "track": track}, "file",
                                            Path(model).name, content)
        return self._request("POST", "submissions/", data=_ProgressReader(body, on_progress),
                             headers={"Content-Type": content_type})

    def submission(self, submission_id: int) -> dict:
        return self._request("GET", f"submissions/{submission_id}/")

    def submissions(self, competition: str | None = None, track: str | None = None) -> list[dict]:
        """Your own submissions, newest first (the API's latest 1,000)."""
        params = {k: v for k, v in (("competition", competition), ("track", track)) if v}
        return self._request("GET", "submissions/", params=params)

    def set_final(self, submission_id: int, final: bool = True) -> dict:
        """Mark one of your scored submissions final (``final=False``: unmark it); the
        submission as it now is. Refused (a ``ClientError`` saying why) after the deadline,
        beyond the track's number of final picks, or for a submission that is not scored."""
        return self._request("POST", f"submissions/{submission_id}/final/", json={"final": final})

    def wait(self, submission_id: int, *, poll_seconds: float = 2.0, timeout: float = 1800.0,
             on_status: Callable[[str], None] | None = None,
             on_update: Callable[[dict], None] | None = None,
             until: frozenset[str] = TERMINAL_STATUSES) -> dict:
        """Poll until the submission reaches a status in ``until`` (default: a terminal one);
        return its last state.

        ``on_status`` gets each new status; ``on_update`` the whole submission whenever its
        status or its place in the queue (``queue_position``) changes."""
        deadline = time.monotonic() + timeout
        last = None
        last_place = None
        while True:
            body = self.submission(submission_id)
            if body["status"] != last and on_status is not None:
                on_status(body["status"])
            place = (body["status"], body.get("queue_position"))
            if place != last_place and on_update is not None:
                on_update(body)
            last, last_place = body["status"], place
            if last in until:
                return body
            if time.monotonic() > deadline:
                raise ClientError(f"submission {submission_id} is still {last} after "
                                  f"{timeout:.0f} s; check it later with its id")
            time.sleep(poll_seconds)

    def leaderboard(self, competition: str, track: str | None = None,
                    category: str | None = None, split: str | None = None,
                    offset: int | None = None, limit: int | None = None) -> dict:
        params = {k: v for k, v in (("track", track), ("category", category), ("split", split),
                                    ("offset", offset), ("limit", limit)) if v}
        return self._request("GET", f"competitions/{competition}/leaderboard/", params=params,
                             needs_token=False)

    def whole_leaderboard(self, competition: str, track: str, category: str,
                          page: int = 1000, max_pages: int = 100) -> dict:
        """Every row of one board, read page by page (the API answers at most 1,000 a time)."""
        board = self.leaderboard(competition, track, category, limit=page)
        rows = list(board.get("rows") or [])
        while len(rows) % page == 0 and rows and len(rows) < page * max_pages:
            more = self.leaderboard(competition, track, category, offset=len(rows),
                                    limit=page).get("rows") or []
            if not more:
                break
            rows.extend(more)
        return {**board, "rows": rows}

    def ranks(self, competition: str, track: str, submission_id: int,
              categories=("accuracy", "speed", "size", "efficiency")) -> dict[str, int | None]:
        """The rank of ``submission_id`` in each category of the public leaderboard (None: not
        ranked there, e.g. over a limit, under the accuracy floor, or not your best)."""
        ranks: dict[str, int | None] = {}
        for category in categories:
            rows = self.leaderboard(competition, track, category)["rows"]
            ranks[category] = next((row["rank"] for row in rows
                                    if row["submission_id"] == submission_id), None)
        return ranks


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 401:
        return "the server refused the token (401): check --token / ARENA_TOKEN"
    if isinstance(body, dict):
        detail = body.get("detail") or "; ".join(
            f"{key}: {' '.join(map(str, value)) if isinstance(value, list) else value}"
            for key, value in body.items())
        return f"{detail} (HTTP {response.status_code})"
    return f"HTTP {response.status_code} from {response.url}"


__all__ = ["ArenaClient", "CHECKED_STATUSES", "ClientError", "Settings", "TERMINAL_STATUSES", "config_path",
           "multipart_body", "resolve_settings"]
