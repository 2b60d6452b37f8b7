"""`manage.py create_competition SLUG --title T --tracks mnist,cifar10,tinygpt` and limits."""

from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from competitions.models import Competition
from competitions.services import create_competition


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Create a competition with one track per task (open now, 30 days, SPEC limits)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--title", required=True)
        parser.add_argument("--description", default="")
        parser.add_argument("--tracks", default="mnist,cifar10,tinygpt", help="comma-separated tasks")
        parser.add_argument("--start", type=_when, help="ISO date/time (UTC if no zone); default now")
        parser.add_argument("--deadline", type=_when, help="ISO date/time; default start + 30 days")
        parser.add_argument("--unlisted", action="store_true")
        parser.add_argument("--organizer", action="append", default=[], help="username (repeatable)")
        parser.add_argument("--max-size-bytes", type=int)
        parser.add_argument("--max-latency-ms", type=float)
        parser.add_argument("--accuracy-floor", type=float)
        parser.add_argument("--daily-limit", type=int)
        parser.add_argument("--total-limit", type=int)
        parser.add_argument("--rejected-daily-limit", type=int)

    def handle(self, *args, **options):
        limit_names = ("max_size_bytes", "max_latency_ms", "accuracy_floor", "daily_limit",
                       "total_limit", "rejected_daily_limit")
        limits = {name: options[name] for name in limit_names if options[name] is not None}
        users = get_user_model().objects.filter(username__in=options["organizer"])
        missing = set(options["organizer"]) - {user.username for user in users}
        if missing:
            raise CommandError(f"no such user: {', '.join(sorted(missing))}")
        if Competition.objects.filter(slug=options["slug"]).exists():
            raise CommandError(f"a competition called {options['slug']!r} exists already")
        try:
            competition = create_competition(
                options["slug"], options["title"],
                [t.strip() for t in options["tracks"].split(",") if t.strip()],
                description=options["description"], start=options["start"],
                deadline=options["deadline"], organizers=list(users),
                visibility=(Competition.Visibility.UNLISTED if options["unlisted"]
                            else Competition.Visibility.PUBLIC),
                **limits,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        tracks = ", ".join(track.slug for track in competition.tracks.all())
        self.stdout.write(
            f"created {competition.slug}: tracks {tracks}; open {competition.start:%Y-%m-%d %H:%M} "
            f"to {competition.deadline:%Y-%m-%d %H:%M} UTC"
        )
