"""``fetch``: download the official files (SHA-256 checked, with a progress bar), then import them.

Downloads land in ``<data_dir>/downloads/`` in the local layout of ``../shared/datasets/`` and are
kept, so a second ``fetch`` downloads nothing.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from evaluator.datasets.errors import DownloadError
from evaluator.datasets.importer import import_from
from evaluator.datasets.sources import OFFICIAL_SOURCES, RemoteFile
from evaluator.datasets.store import file_sha256, resolve_data_dir
from evaluator.tasks import TASKS, get_task

TIMEOUT_SECONDS = 30
CHUNK_BYTES = 1 << 16


def _progress(console: Console, enabled: bool) -> Progress:
    """A live bar on a terminal (elsewhere ``download`` prints one plain line per file)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
    )


def _stream(url: str, destination: Path, progress: Progress, label: str) -> str:
    """Download ``url`` into ``destination`` under a bar called ``label``; its SHA-256."""
    if not url.startswith(("https://", "http://")):
        raise DownloadError(f"refusing to download {url}: only http and https addresses are used")
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = progress.add_task(label, total=total)
        with open(destination, "wb") as handle:
            while block := response.read(CHUNK_BYTES):
                handle.write(block)
                digest.update(block)
                progress.advance(bar, len(block))
    return digest.hexdigest()


def _reason(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error) or type(error).__name__


def download(remote: RemoteFile, root: Path, *, progress: bool = True) -> Path:
    """``remote`` at ``root/remote.path``, downloaded from the first mirror that works unless a copy
    with the right SHA-256 is already there. ``DownloadError`` when no mirror gives the right file."""
    destination = root / remote.path
    if destination.exists() and file_sha256(destination) == remote.sha256:
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    failures = []
    console = Console(stderr=True)
    with _progress(console, progress) as bars:
        for url in remote.urls:
            if progress and not console.is_terminal:
                console.print(f"downloading {remote.path} from {url}", soft_wrap=True)
            try:
                actual = _stream(url, partial, bars, remote.path)
            except (TimeoutError, urllib.error.URLError, OSError, ValueError) as error:
                failures.append(f"{url}: {_reason(error)}")
                continue
            if actual == remote.sha256:
                os.replace(partial, destination)
                return destination
            failures.append(f"{url}: SHA-256 {actual} does not match the expected {remote.sha256}")
    partial.unlink(missing_ok=True)
    raise DownloadError(
        f"could not download {remote.path} ({'; '.join(failures)}). Without a network, copy the "
        "files and run `python -m evaluator datasets import --from DIR`"
    )


def fetch(
    data_dir: str | os.PathLike | None = None,
    tasks: Iterable[str] | None = None,
    *,
    sources: dict[str, tuple[RemoteFile, ...]] | None = None,
    progress: bool = True,
) -> dict:
    """Download the official files of ``tasks`` (default: all), verify them and prepare the tasks.

    ``sources`` replaces ``OFFICIAL_SOURCES`` (for a mirror, or tests). Returns what ``import_from``
    returns.
    """
    chosen = list(tasks) if tasks is not None else list(TASKS)
    for task in chosen:
        get_task(task)
    target = resolve_data_dir(data_dir)
    downloads = target / "downloads"
    for task in chosen:
        for remote in (sources or OFFICIAL_SOURCES)[task]:
            download(remote, downloads, progress=progress)
    return import_from(downloads, target, chosen)
