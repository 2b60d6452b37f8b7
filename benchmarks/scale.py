"""Scale benchmark (issue 13): what one track costs as it grows, and what uploads cost.

    .venv/bin/python benchmarks/scale.py [--sizes 1000,10000,100000] [--students 1000]
        [--writes 200] [--concurrency 2,8,32] [--requests 400] [--upload-mb 200]

1. **Score writes per second** at each stored size. A fresh PostgreSQL database is filled with
   scored submissions by bulk inserts (``bulk_create`` through the platform's models, as
   ``benchmarks/leaderboard.py`` does; 100,000 through the real write path would take hours here)
   and ranked once by the full rebuild (timed: what every write cost before the incremental
   update). Then ``--writes`` scores are written one after another through the real write path,
   ``lifecycle.record_scorecard`` (claim token, track lock, Score row, ``scores_changed`` and the
   incremental leaderboard update, commit), and the rate is printed with the full rebuild's
   rate side by side.
2. **Leaderboard API p50/p99** at 2, 8 and 32 concurrent keep-alive clients against the largest
   size: gunicorn pinned to core 0, the clients (threads of one process) to core 1 (where the
   machine has two cores; ``os.sched_setaffinity``).
3. **Upload throughput to the object store**: ``storage.store_chunks`` of ``--upload-mb`` MB to
   moto's S3 server (its own process, on loopback) and, side by side, to local files.
4. **Memory of a web worker during a 200 MB upload**: gunicorn (one sync worker) with the S3
   backend; the file is POSTed to the API in a streamed multipart body while the worker's RSS is
   sampled every 20 ms; its peak over its RSS before the upload is printed.

Everything talks to 127.0.0.1 only; the fresh database is dropped at the end. The machine is shared
(2 cores): figures are noisy, compare the ratios printed side by side.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]

from benchmarks import leaderboard as lb  # noqa: E402 - the path above first

HOST = "127.0.0.1"
AIM_WRITES_PER_S = 50.0
AIM_P99_MS = 50.0
MB = 1_000_000


# --- 1. score writes ----------------------------------------------------------------------------

def grow(track, teacher, people, target: int, rng: random.Random) -> float:
    """Bulk-insert scored submissions until the track holds ``target``; seconds taken."""
    from submissions.models import Score, Submission

    started = time.perf_counter()
    have = Submission.objects.filter(track=track).count()
    while have < target:
        batch = min(10_000, target - have)
        rows = [lb._scored(track, teacher if have + i < 3 else people[rng.randrange(len(people))],
                           have + i < 3, have + i, rng) for i in range(batch)]
        for _, score in rows:
            # Speed from the same distribution as the written cards (``_card``), so a new
            # score is a student's new best about as often as it would be in a real course.
            index = 2.0 / score.latency_ms
            spread = index * rng.uniform(0.01, 0.08)
            score.speed_index = index
            score.speed_index_low, score.speed_index_high = index - spread, index + spread
        created = Submission.objects.bulk_create([s for s, _ in rows], batch_size=2000)
        for submission, (_, score) in zip(created, rows, strict=True):
            score.submission = submission
        Score.objects.bulk_create([score for _, score in rows], batch_size=2000)
        have += batch
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum does after a bulk load
    return time.perf_counter() - started


def full_rebuild_s(track) -> tuple[float, int]:
    from competitions.models import Track
    from django.db import transaction
    from leaderboards.ranking import rebuild_track

    started = time.perf_counter()
    with transaction.atomic():
        rows = rebuild_track(Track.objects.select_for_update().get(pk=track.pk))
    return time.perf_counter() - started, rows


def score_writes(track, people, writes: int, rng: random.Random) -> tuple[float, int]:
    """``writes`` scorecards through ``lifecycle.record_scorecard``, one after another; the
    writes per second and how many changed a stored row."""
    from leaderboards.models import LeaderboardEntry

    from submissions import lifecycle
    from submissions.models import Status, Submission

    pending = []
    for _ in range(writes):
        submission = Submission.objects.create(
            track=track, user=people[rng.randrange(len(people))], sha256=uuid.uuid4().hex * 2,
            size_bytes=1000, artifact_path="bench/x.onnx", status=Status.SCORING, attempts=1)
        pending.append((submission.pk, _card(rng)))
    changed = 0
    seconds = 0.0
    for submission_id, card in pending:
        # Only the write is timed, as a worker makes it; the check of what it changed is not.
        started = time.perf_counter()
        status = lifecycle.record_scorecard(submission_id, 1, card)
        seconds += time.perf_counter() - started
        assert status in (Status.SCORED, Status.OVER_LIMIT)
        changed += LeaderboardEntry.objects.filter(submission_id=submission_id).exists()
    return writes / seconds, changed


def _card(rng: random.Random) -> dict:
    accuracy = min(0.995, max(0.1, rng.gauss(0.95, 0.03)))
    latency = 10 ** rng.uniform(-1.7, 1.5)
    index = 2.0 / latency
    spread = index * rng.uniform(0.01, 0.08)
    return {"valid": True, "latency_ms": latency, "latency_p90_ms": latency * 1.1,
            "speed_index": index, "speed_index_ci": [index - spread, index + spread],
            "size_bytes": int(10 ** rng.uniform(3.5, 6.8)), "raw_bytes": 1, "params": 1,
            "nonzero_params": 1, "peak_memory_mb": 20.0, "throughput": 1000.0, "warnings": [],
            "splits": {"public": {"accuracy": accuracy},
                       "private": {"accuracy": min(0.999, accuracy + rng.gauss(0, 0.005))}}}


# --- 2. leaderboard reads -------------------------------------------------------------------------

def _pin(cpu: int):
    def pin() -> None:
        if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() >= 2:
            os.sched_setaffinity(0, {cpu})
    return pin


def read_load(port: int, levels: list[int], requests: int, out) -> None:
    _pin(1)()
    for concurrency in levels:
        path = f"/api/competitions/{lb.SLUG}/leaderboard/?track=mnist&category=accuracy"
        out.put((concurrency, lb.run_scenario(port, path, concurrency, requests, 30.0)))
    out.put(None)


def start_web(env: dict[str, str], port: int, workers: int, log: Path) -> subprocess.Popen:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    handle = open(log, "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [str(gunicorn), "arena.wsgi", "--pythonpath", "platform", "--bind", f"{HOST}:{port}",
         "--workers", str(workers), "--keep-alive", "5", "--timeout", "300",
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_pin(0))


def read_path_ms(track, repeats: int = 200) -> tuple[list[float], list[float]]:
    """In-process times of ``leaderboard_rows`` (100 rows), uncached then cached (ms)."""
    from competitions.models import Track
    from django.core.cache import cache
    from leaderboards.ranking import ROW_FIELDS, leaderboard_rows

    track = Track.objects.get(pk=track.pk)
    uncached, cached = [], []
    for _ in range(repeats):
        cache.clear()
        began = time.perf_counter()
        leaderboard_rows(track, "accuracy", "public", ROW_FIELDS)
        uncached.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        leaderboard_rows(track, "accuracy", "public", ROW_FIELDS)
        cached.append((time.perf_counter() - began) * 1000)
    return uncached, cached


# --- 3. and 4. uploads --------------------------------------------------------------------------

def chunks_of(total: int, size: int = 1 << 20):
    block = os.urandom(size)
    sent = 0
    while sent < total:
        part = block[: min(size, total - sent)]
        sent += len(part)
        yield part


def upload_throughput(endpoint: str, bucket: str, megabytes: int, var_dir: Path) -> dict:
    from django.test import override_settings

    from submissions.storage import store_chunks
    from tests.integration import object_store

    total = megabytes * MB
    out = {}
    for name, setting in (("object store (moto S3 server)",
                           object_store.storage_setting(endpoint, bucket)),
                          ("local files", None)):
        storages = {"artifacts": setting} if setting else {"artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage"}}
        from django.conf import settings

        with override_settings(STORAGES={**settings.STORAGES, **storages},
                               ARENA_ARTIFACT_DIR=var_dir / "local-artifacts",
                               ARENA_MAX_UPLOAD_BYTES=total + 1):
            started = time.perf_counter()
            store_chunks(chunks_of(total))
            out[name] = total / MB / (time.perf_counter() - started)
    return out


def upload_memory(env: dict[str, str], token: str, megabytes: int, log: Path) -> dict:
    """Peak RSS of the one gunicorn worker while a ``megabytes`` MB file is POSTed to the API."""
    import psutil

    port = lb.free_port()
    server = start_web(env, port, 1, log)
    try:
        lb.wait_until_up(port)
        master = psutil.Process(server.pid)
        worker = master.children()[0]
        baseline = worker.memory_info().rss
        peak = [baseline]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], worker.memory_info().rss)
                except psutil.NoSuchProcess:
                    return
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        boundary = uuid.uuid4().hex
        head = "".join(
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
            for k, v in (("competition", lb.SLUG), ("track", "mnist"))).encode()
        head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                 f"filename=\"big.onnx\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        total = megabytes * MB
        connection = http.client.HTTPConnection(HOST, port, timeout=600)
        started = time.perf_counter()
        connection.putrequest("POST", "/api/submissions/")
        connection.putheader("Authorization", f"Token {token}")
        connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        connection.putheader("Content-Length", str(len(head) + total + len(tail)))
        connection.endheaders()
        connection.send(head)
        for part in chunks_of(total):
            connection.send(part)
        connection.send(tail)
        response = connection.getresponse()
        body = response.read()
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        return {"status": response.status, "body": body[:200], "seconds": seconds,
                "baseline_mb": baseline / MB, "peak_mb": peak[0] / MB}
    finally:
        lb.stop(server)


# --- main -----------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--concurrency", default="2,8,32")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--upload-mb", type=int, default=200)
    parser.add_argument("--database-url", help="PostgreSQL server URL (a fresh database is made)")
    parser.add_argument("--parts", default="writes,reads,uploads",
                        help="which of writes, reads, uploads to run (reads fill the largest size)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))

    var_dir = Path(tempfile.mkdtemp(prefix="arena-scale-"))
    server_url = args.database_url or os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")):
        server_url = f"postgres://postgres@{HOST}:5432/postgres"
    if not lb.postgres_server(server_url):
        raise SystemExit(f"no PostgreSQL server answers at {server_url}")
    # Its own prefix, so a run's database is told apart from the read benchmark's.
    database_url, pg_name = lb.create_postgres_database(server_url, "arena_scale_")
    # A SIGTERM (a CI timeout) unwinds through the ``finally`` below, which drops the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from tests.integration import object_store

    moto, endpoint = object_store.start_server(var_dir / "moto.log")
    bucket = object_store.make_bucket(endpoint)
    env = {**os.environ, "DATABASE_URL": database_url, "ARENA_VAR_DIR": str(var_dir),
           "CELERY_BROKER_URL": "memory://", "DJANGO_SETTINGS_MODULE": "arena.settings",
           "DEBUG": "false", "SECRET_KEY": "scale-benchmark-" + "k" * 40,
           "ARENA_THROTTLE_ANON": "1000000/min", "ARENA_THROTTLE_USER": "1000000/min",
           "ARENA_THROTTLE_UPLOADS": "1000000/min",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'platform'}"}
    env.pop("ARENA_CACHE_URL", None)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "ARENA_VAR_DIR", "CELERY_BROKER_URL",
                                           "DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY")})
    os.environ.pop("ARENA_CACHE_URL", None)
    import django

    django.setup()
    from accounts.services import create_user
    from competitions.models import Participation
    from competitions.services import create_competition
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections

    server = None
    try:
        call_command("migrate", interactive=False, verbosity=0)
        teacher, _ = create_user("teacher", "instructor")
        competition = create_competition(lb.SLUG, "Scale benchmark", ["mnist"],
                                         organizers=[teacher], daily_limit=10**6,
                                         total_limit=10**6, rejected_daily_limit=10**6)
        track = competition.tracks.get()
        users = get_user_model()
        users.objects.bulk_create([users(username=f"student{i:05d}", password="!")
                                   for i in range(args.students)], batch_size=2000)
        people = list(users.objects.filter(username__startswith="student").order_by("id"))
        Participation.objects.bulk_create(
            [Participation(competition=competition, user=u) for u in people], batch_size=2000)
        rng = random.Random(0)
        print(f"database: PostgreSQL (fresh database {pg_name}); {args.students:,} students; "
              f"load average {os.getloadavg()[0]:.1f} at the start")
        print("\n1. score writes through lifecycle.record_scorecard (one after another)")
        header = (f"{'stored':>8} {'fill s':>7} {'rebuild ms':>11} {'rebuild/s':>10} "
                  f"{'writes/s':>9} {'ratio':>7} {'new rows':>9}  aim >= {AIM_WRITES_PER_S:.0f}/s")
        print(header)
        print("-" * len(header))
        sizes = [int(n) for n in args.sizes.split(",")]
        for size in sizes if "writes" in parts else []:
            fill_s = grow(track, teacher, people, size, rng)
            rebuild_s, _ = full_rebuild_s(track)
            rate, changed = score_writes(track, people, args.writes, rng)
            print(f"{size:>8,} {fill_s:>7.1f} {rebuild_s * 1000:>11.0f} {1 / rebuild_s:>10.1f} "
                  f"{rate:>9.1f} {rate * rebuild_s:>6.0f}x {changed:>9}  "
                  f"{'ok' if rate >= AIM_WRITES_PER_S else 'UNDER'}")
        print("rebuild/s: writes per second if every write rebuilt the track (before); ratio: "
              "incremental over that; new rows: writes that put the submission on a board.")

        levels = [int(n) for n in args.concurrency.split(",")]
        size = sizes[-1]
        if "reads" in parts:
            grow(track, teacher, people, size, rng)
            if "writes" not in parts:
                full_rebuild_s(track)
            uncached, cached = read_path_ms(track)
            print(f"\n2. the read path in-process at {size:,} stored submissions "
                  f"(ranking.leaderboard_rows, 100 rows): p50 {lb.percentile(uncached, 50):.1f} ms "
                  f"/ p99 {lb.percentile(uncached, 99):.1f} ms with the cache emptied each time "
                  f"(one indexed query), p50 {lb.percentile(cached, 50):.2f} ms cached")
        if "reads" in parts:
            connections.close_all()
            port = lb.free_port()
            server = start_web(env, port, 2, var_dir / "gunicorn.log")
            lb.wait_until_up(port)
            queue = multiprocessing.get_context("spawn").Queue()
            client = multiprocessing.get_context("spawn").Process(
                target=read_load, args=(port, levels, args.requests, queue))
            client.start()
            print(f"   leaderboard API (accuracy, 100 rows) at {size:,} stored submissions; "
                  "gunicorn (2 sync workers) on core 0, clients on core 1")
            print(f"{'clients':>7} {'reqs':>6} {'err':>4} {'req/s':>7} {'p50 ms':>7} "
                  f"{'p99 ms':>7}  p99/aim")
            while (item := queue.get(timeout=300)) is not None:
                concurrency, raw = item
                p50 = lb.percentile(raw["latencies_ms"], 50)
                p99 = lb.percentile(raw["latencies_ms"], 99)
                rate = raw["requests"] / raw["seconds"] if raw["seconds"] else 0.0
                print(f"{concurrency:>7} {raw['requests']:>6} {raw['errors']:>4} {rate:>7.0f} "
                      f"{p50:>7.1f} {p99:>7.1f}  {p99 / AIM_P99_MS:>5.2f}x "
                      f"{'ok' if p99 < AIM_P99_MS else 'OVER'}")
            client.join(timeout=30)
            lb.stop(server)
            server = None
        if "uploads" not in parts:
            return

        print(f"\n3. upload throughput, {args.upload_mb} MB through storage.store_chunks")
        for name, rate in upload_throughput(endpoint, bucket, args.upload_mb, var_dir).items():
            print(f"   {name:<32} {rate:>7.1f} MB/s")

        student, token = create_user("uploader", "student")
        Participation.objects.create(competition=competition, user=student)
        connections.close_all()
        web_env = {**env, **object_store.storage_env(endpoint, bucket),
                   "ARENA_MAX_UPLOAD_BYTES": str((args.upload_mb + 1) * MB)}
        result = upload_memory(web_env, token, args.upload_mb, var_dir / "upload.log")
        print(f"\n4. one gunicorn worker while a {args.upload_mb} MB upload streams to the object "
              f"store: HTTP {result['status']} in {result['seconds']:.1f} s; RSS "
              f"{result['baseline_mb']:.0f} MB before, peak {result['peak_mb']:.0f} MB "
              f"(+{result['peak_mb'] - result['baseline_mb']:.0f} MB)")
        if result["status"] >= 300:
            print(f"   answer: {result['body']!r}")
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end (2 shared cores)")
    finally:
        if server is not None:
            lb.stop(server)
        lb.stop(moto)
        connections.close_all()
        lb.drop_postgres_database(server_url, pg_name)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
