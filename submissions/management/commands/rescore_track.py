"""`manage.py rescore_track COMPETITION TRACK --hardware-class CLASS`: score a whole track again on
another hardware class. The current scores stay on the leaderboard until each new one lands."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from submissions.rescoring import RescoreRefused, rescore_progress, rescore_track, track_named


class Command(BaseCommand):
    help = ("Move a track to another hardware class and re-score each of its scored submissions "
            "there once (the current scores stay visible until the new ones land).")

    def add_arguments(self, parser):
        parser.add_argument("competition", help="the competition's slug")
        parser.add_argument("track", help="the track's slug (usually the task)")
        parser.add_argument("--hardware-class", help="the class to score the track on")
        parser.add_argument("--before-worker", action="store_true",
                            help="queue the re-scores even if no worker of the class has started")
        parser.add_argument("--status", action="store_true",
                            help="only print how far the track's re-scores have got")

    def handle(self, *args, **options):
        try:
            track = track_named(options["competition"], options["track"])
        except RescoreRefused as exc:
            raise CommandError(str(exc)) from exc
        if options["status"]:
            counts = rescore_progress(track)
            self.stdout.write(f"{track}: scored on {track.hardware_class or 'the default class'}; "
                              "re-scores " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            return
        if not options["hardware_class"]:
            raise CommandError("say which class: --hardware-class CLASS (or --status)")
        try:
            plan = rescore_track(track, options["hardware_class"],
                                 require_known_class=not options["before_worker"])
        except RescoreRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{track}: now scored on {plan.hardware_class} (was {plan.previous_class or 'none'}). "
            f"{plan.rescores} scored submission(s) queued for re-scoring (their current scores "
            f"stay on the leaderboard until the new ones land), {plan.moved_waiting} waiting "
            f"upload(s) moved, {plan.already_there} already scored there. Follow it with "
            f"--status.")
