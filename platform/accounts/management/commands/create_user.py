"""`manage.py create_user NAME --role student|instructor`: create a user and print the API token."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Profile
from accounts.services import create_user


class Command(BaseCommand):
    help = "Create a student or instructor and print the user's API token."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=Profile.Role.values, default=Profile.Role.STUDENT)
        parser.add_argument("--password", default=None, help="also allow web login")
        parser.add_argument("--email", default="")

    def handle(self, *args, **options):
        try:
            _, token = create_user(
                options["username"], options["role"], password=options["password"],
                email=options["email"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(token)
