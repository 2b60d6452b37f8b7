"""`manage.py demo`: the whole platform on one machine with no servers to install.

Migrates the database (SQLite by default), prepares the datasets, creates a demo competition with
the three tracks, an instructor and a student, starts real Celery worker processes (one scoring,
one on the validation queue with beat) beside a gunicorn web server, submits the baseline models
the project ships, and prints the address and a student token. A few demo students (ada, ben,
cleo) upload varied models made from the baselines (magnitude-pruned copies and the compressed
ones), scored by the same worker, so every track shows a ranked leaderboard and a Pareto front in
its first minutes. Runs until Ctrl-C; ``--check`` exits once all of them are scored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import requests
from accounts.services import create_user
from arena import env as environment
from competitions.models import Competition
from competitions.services import create_competition
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from onnx import numpy_helper

from evaluator.tasks import TASKS
from submissions.models import FINAL_STATUSES, Status, Submission
from submissions.services import submit

DEMO_SLUG = "demo"
BASELINE_DIR = settings.REPO_ROOT / "reference_models" / "baselines"
DEMO_STUDENTS = ("ada", "ben", "cleo")


class Command(BaseCommand):
    help = "Start the platform on the embedded default with a demo competition and baselines."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=environment.integer("PORT", 8000))
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--tasks", default=",".join(TASKS),
                            help="tasks whose datasets to prepare and baselines to submit")
        parser.add_argument("--check", action="store_true",
                            help="exit once the baselines are scored (non-zero if one is not)")
        parser.add_argument("--baselines", type=Path, default=BASELINE_DIR,
                            help="folder of baseline models named <task>*.onnx")
        parser.add_argument("--timeout", type=float, default=1800,
                            help="--check: seconds to wait for the baselines")
        parser.add_argument("--no-students", action="store_true",
                            help="submit the baselines only (no demo students)")

    def handle(self, *args, **options):
        tasks = [task.strip() for task in options["tasks"].split(",") if task.strip()]
        unknown = set(tasks) - set(TASKS)
        if unknown:
            raise CommandError(f"unknown task(s) {', '.join(sorted(unknown))}; "
                               f"the tasks are: {', '.join(TASKS)}")
        call_command("migrate", interactive=False, verbosity=0)
        data_dir = self.prepare_datasets(tasks)
        instructor, student_token = self.create_people()
        competition = self.create_demo_competition(instructor)
        children = self.start_services(data_dir, options["host"], options["port"])
        try:
            address = f"http://{options['host']}:{options['port']}"
            self.wait_for_web(address, children)
            baselines = self.submit_baselines(competition, instructor, tasks,
                                              options["baselines"])
            students = ([] if options["no_students"] else
                        self.submit_students(competition, tasks, options["baselines"]))
            self.print_welcome(address, student_token, baselines)
            if options["check"]:
                self.check_baselines(address, baselines, options["timeout"], children)
                if students:
                    self.check_students(address, students, tasks, options["timeout"],
                                        children)
                self.stdout.write(self.style.SUCCESS("demo check passed"))
            else:
                self.run_until_interrupted(children)
        finally:
            self.stop(children)

    # --- steps -------------------------------------------------------------------------------

    def prepare_datasets(self, tasks: list[str]) -> Path:
        from evaluator.datasets import (
            DatasetError,
            default_data_dir,
            fetch,
            import_from,
            prepared_entry,
        )

        data_dir = Path(settings.ARENA_DATA_DIR or default_data_dir())
        missing = []
        for task in tasks:
            try:
                prepared_entry(task, data_dir)
            except DatasetError:
                missing.append(task)
        if not missing:
            return data_dir
        shared = environment.path("ARENA_SHARED_DATASETS",
                                  settings.REPO_ROOT.parent / "shared" / "datasets")
        if shared.is_dir():
            self.stdout.write(f"preparing {', '.join(missing)} from {shared} into {data_dir} ...")
            import_from(shared, data_dir, missing)
        else:
            self.stdout.write(f"downloading {', '.join(missing)} into {data_dir} ...")
            fetch(data_dir, missing)
        return data_dir

    def create_people(self):
        instructor, _ = create_user("instructor", "instructor", password="instructor")
        _, student_token = create_user("student", "student", password="student")
        return instructor, student_token

    def create_demo_competition(self, instructor) -> Competition:
        competition = Competition.objects.filter(slug=DEMO_SLUG).first()
        if competition is None:
            competition = create_competition(
                DEMO_SLUG, "Model Arena demo",
                list(TASKS), organizers=[instructor], daily_limit=20,
                description="Small, fast models for MNIST, CIFAR-10 and Tiny Shakespeare.",
            )
        return competition

    def start_services(self, data_dir: Path, host: str, port: int) -> list[subprocess.Popen]:
        env = {**os.environ, "ARENA_DATA_DIR": str(data_dir),
               # A few latency runs only: quick to try; set ARENA_LATENCY_PROTOCOL=standard to rank.
               "ARENA_LATENCY_PROTOCOL": environment.string("ARENA_LATENCY_PROTOCOL", "quick"),
               # A laptop's worker runs as its user, who cannot drop to nobody: the sandbox
               # reports what it got, and requires nothing unless asked to.
               "ARENA_REQUIRE_ISOLATION": environment.string("ARENA_REQUIRE_ISOLATION", "none"),
               "PYTHONPATH": os.pathsep.join([str(settings.REPO_ROOT),
                                              str(settings.REPO_ROOT / "platform")])}
        bin_dir = Path(sys.executable).parent
        var = Path(settings.VAR_DIR)
        celery = [str(bin_dir / "celery"), "--workdir", "platform", "-A", "arena", "worker",
                  "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                  "--without-heartbeat"]
        # One model scored at a time; uploads are checked beside it, never behind it.
        worker = [*celery, "--concurrency", "1", "--hostname", "demo-score@%h"]
        validator = [*celery, "--concurrency", "2", "--hostname", "demo-validate@%h",
                     "--beat", "--schedule", str(var / "celerybeat-schedule")]
        web = [str(bin_dir / "gunicorn"), "arena.wsgi", "--pythonpath", "platform",
               "--bind", f"{host}:{port}", "--workers", "2", "--timeout", "120"]
        children = []
        var.mkdir(parents=True, exist_ok=True)
        for name, command, role in (("worker", worker, "score"),
                                    ("validator", validator, "validate"), ("web", web, "score")):
            log = open(var / f"demo-{name}.log", "ab")  # noqa: SIM115 - the child keeps it
            children.append(subprocess.Popen(command, cwd=settings.REPO_ROOT,
                                             env={**env, "ARENA_WORKER_ROLE": role},
                                             stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True))
        self.stdout.write(f"workers and web server started (logs in {var}/demo-*.log)")
        return children

    def wait_for_web(self, address: str, children, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ensure_alive(children)
            try:
                if requests.get(f"{address}/api/competitions/", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise CommandError(f"the web server did not answer at {address}")

    def submit_baselines(self, competition: Competition, instructor, tasks: list[str],
                         folder: Path) -> list[Submission]:
        """Each ``<folder>/<task>*.onnx`` once per track (reruns reuse them)."""
        submitted = []
        for path in sorted(folder.glob("*.onnx")):
            task = next((t for t in tasks if path.name.startswith(t)), None)
            if task is None:
                continue
            track = competition.tracks.get(task=task)
            data = path.read_bytes()
            existing = Submission.objects.filter(track=track, is_baseline=True, label=path.name,
                                                 status__in=[Status.RECEIVED, Status.VALIDATING,
                                                             Status.QUEUED, Status.SCORING,
                                                             Status.SCORED, Status.OVER_LIMIT])
            submission = existing.first() or submit(track, instructor, [data], label=path.name,
                                                    as_baseline=True)
            submitted.append(submission)
        return submitted

    def submit_students(self, competition: Competition, tasks: list[str],
                        folder: Path) -> list[Submission]:
        """The demo students' uploads: per task, models made from the shipped baselines. Reruns
        upload the same bytes, which returns the earlier submissions (no upload used)."""
        submitted = []
        people = {name: create_user(name, "student", password=name)[0] for name in DEMO_STUDENTS}
        for task in tasks:
            track = competition.tracks.get(task=task)
            for student, label, data in student_models(folder, task):
                submitted.append(submit(track, people[student], [data], label=label))
        self.stdout.write(f"demo students {', '.join(DEMO_STUDENTS)}: {len(submitted)} "
                          f"uploads (logins: name/name)")
        return submitted

    def check_students(self, address: str, students: list[Submission], tasks: list[str],
                       timeout: float, children) -> None:
        """Wait for the students' uploads, then require a ranked board and a Pareto front on
        each track that has them."""
        deadline = time.monotonic() + timeout
        pending = Submission.objects.filter(pk__in=[s.pk for s in students]).exclude(
            status__in=FINAL_STATUSES)
        while pending.exists():
            self.ensure_alive(children)
            if time.monotonic() > deadline:
                raise CommandError("the demo students' uploads were not scored in time")
            time.sleep(0.5)
        board = f"{address}/api/competitions/{DEMO_SLUG}/leaderboard/"
        for task in tasks:
            if not any(s.track.task == task for s in students):
                continue
            ranked = [row for row in requests.get(board, params={"track": task}, timeout=10)
                      .json()["rows"] if row["rank"] is not None]
            front = requests.get(board, params={"track": task, "category": "pareto"},
                                 timeout=10).json()["rows"]
            self.stdout.write(f"track {task}: {len(ranked)} ranked students, "
                              f"{len(front)} models on the Pareto front")
            if not ranked or not front:
                raise CommandError(f"track {task} shows no ranked student or no Pareto front")

    def print_welcome(self, address: str, token: str, baselines: list[Submission]) -> None:
        names = ", ".join(s.label for s in baselines) or "none (no baseline files shipped yet)"
        self.stdout.write(self.style.SUCCESS(f"\nModel Arena is running at {address}/"))
        self.stdout.write(f"  leaderboard API: {address}/api/competitions/{DEMO_SLUG}/leaderboard/")
        self.stdout.write(f"  student token:   {token}")
        self.stdout.write("  logins:          student/student, instructor/instructor (admin)")
        self.stdout.write(f"  baselines:       {names}")
        self.stdout.write(
            f"  upload:          curl -H 'Authorization: Token {token}' -F file=@model.onnx "
            f"-F competition={DEMO_SLUG} -F track=mnist {address}/api/submissions/\n"
        )

    def check_baselines(self, address: str, baselines: list[Submission], timeout: float,
              children) -> None:
        deadline = time.monotonic() + timeout
        ids = [s.pk for s in baselines]
        pending = Submission.objects.filter(pk__in=ids).exclude(status__in=FINAL_STATUSES)
        while pending.exists():
            self.ensure_alive(children)
            if time.monotonic() > deadline:
                raise CommandError("the baselines were not scored in time")
            time.sleep(0.5)
        for submission in Submission.objects.filter(pk__in=ids):
            self.stdout.write(f"baseline {submission.label}: {submission.status} "
                              f"{submission.error}".rstrip())
        response = requests.get(f"{address}/api/competitions/{DEMO_SLUG}/leaderboard/", timeout=10)
        if not response.ok:
            raise CommandError(f"the leaderboard API answered {response.status_code}")
        bad = Submission.objects.filter(pk__in=ids).exclude(status=Status.SCORED)
        if bad.exists():
            raise CommandError(f"{bad.count()} baseline(s) were not scored")

    def run_until_interrupted(self, children) -> None:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        self.stdout.write("press Ctrl-C to stop")
        try:
            while True:
                self.ensure_alive(children)
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("stopping ...")

    @staticmethod
    def ensure_alive(children) -> None:
        for child in children:
            if child.poll() is not None:
                raise CommandError(f"{Path(child.args[0]).name} exited with {child.returncode}; "
                                   f"see the logs in {settings.VAR_DIR}")

    @staticmethod
    def stop(children) -> None:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)


def prune_model(data: bytes, fraction: float) -> bytes:
    """``data`` with the ``fraction`` smallest-magnitude weights of each float weight matrix or
    kernel set to zero: a smaller compressed file, a little less accurate (what a student's first
    pruning try looks like). Biases and non-float tensors stay as they are."""
    model = onnx.load_from_string(data)
    for tensor in model.graph.initializer:
        if tensor.data_type != onnx.TensorProto.FLOAT or len(tensor.dims) < 2:
            continue
        weights = numpy_helper.to_array(tensor).copy()
        cut = np.quantile(np.abs(weights), fraction)
        weights[np.abs(weights) < cut] = 0.0
        tensor.CopyFrom(numpy_helper.from_array(weights, tensor.name))
    model.doc_string = f"demo: {fraction:.0%} of the weights pruned"
    return model.SerializeToString()


def student_models(folder: Path, task: str) -> list[tuple[str, str, bytes]]:
    """(student, label, model bytes) for one task, from ``folder``'s baselines of it: ada prunes
    the float model lightly, ben uploads the compressed ones (or prunes harder), cleo prunes
    hard and then less (her scores improve over time)."""
    files = {path.name: path.read_bytes() for path in sorted(folder.glob(f"{task}*.onnx"))}
    floats = [name for name in files if "int8" not in name]
    if not floats:
        return []
    stem, base = floats[0].removesuffix(".onnx"), files[floats[0]]
    compressed = [(name, data) for name, data in files.items() if "int8" in name]
    models = [("ada", f"{stem}-pruned30.onnx", prune_model(base, 0.3))]
    models += ([("ben", name, data) for name, data in compressed] or
               [("ben", f"{stem}-pruned50.onnx", prune_model(base, 0.5))])
    models += [("cleo", f"{stem}-pruned80.onnx", prune_model(base, 0.8)),
               ("cleo", f"{stem}-pruned60.onnx", prune_model(base, 0.6))]
    return models
