"""`manage.py rescore COMPETITION TRACK [--submission ID]`: score a track (or one submission)
again on its own hardware class, after the evaluator or the latency protocol changed. The
current scores stay on the leaderboard until each new one lands; no quota is used; re-scores
wait behind every student upload."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from submissions.models import Submission
from submissions.rescoring import (
    RescoreRefused,
    rescore,
    rescore_progress,
    score_versions,
    track_named,
)


class Command(BaseCommand):
    help = ("Re-score every scored submission of a track (or one) on the track's own class; the "
            "current scores stay visible until the new ones land.")

    def add_arguments(self, parser):
        parser.add_argument("competition", help="the competition's slug")
        parser.add_argument("track", help="the track's slug (usually the task)")
        parser.add_argument("--submission", type=int, help="only this submission (its id)")
        parser.add_argument("--status", action="store_true",
                            help="only print the track's re-scores and score versions")

    def handle(self, *args, **options):
        try:
            track = track_named(options["competition"], options["track"])
        except RescoreRefused as exc:
            raise CommandError(str(exc)) from exc
        if options["status"]:
            counts = rescore_progress(track)
            versions = score_versions(track)
            self.stdout.write(f"{track}: re-scores " + ", ".join(
                f"{k} {v}" for k, v in counts.items()) + "; scores by version: " + (
                "; ".join(f"{k}: {v}" for k, v in versions.items()) or "none"))
            return
        submission = None
        if options["submission"] is not None:
            submission = Submission.objects.filter(pk=options["submission"]).first()
            if submission is None:
                raise CommandError(f"no submission #{options['submission']}")
        try:
            queued = rescore(track, submission)
        except RescoreRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{track}: {queued} submission(s) queued for re-scoring (their current "
                          "scores stay on the leaderboard until the new ones land). Follow it "
                          "with --status.")
