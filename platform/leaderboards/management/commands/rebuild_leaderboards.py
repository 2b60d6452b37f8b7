"""`manage.py rebuild_leaderboards [SLUG ...]`: recompute stored leaderboards (after editing limits)."""

from competitions.models import Track
from django.core.management.base import BaseCommand
from django.db import transaction

from leaderboards.ranking import rebuild_track


class Command(BaseCommand):
    help = "Recompute the stored leaderboard rows of every track (or of the given competitions)."

    def add_arguments(self, parser):
        parser.add_argument("competitions", nargs="*", help="competition slugs (default: all)")

    def handle(self, *args, **options):
        tracks = Track.objects.select_related("competition")
        if options["competitions"]:
            tracks = tracks.filter(competition__slug__in=options["competitions"])
        for track_id in tracks.values_list("id", flat=True):
            with transaction.atomic():
                track = Track.objects.select_for_update().get(pk=track_id)
                rows = rebuild_track(track)
            self.stdout.write(f"{track}: {rows} rows")
