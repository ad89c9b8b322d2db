from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from integrations.models import SourceKind
from integrations.services import source_create
from leadflow.errors import DomainError


class Command(BaseCommand):
    help = "Create an inbound source and print the URL to configure in the sending system."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=SourceKind.values)
        parser.add_argument("slug", help="Last part of the intake URL, e.g. mautic-prod.")
        parser.add_argument(
            "--secret", default="", help="Shared secret; a random one is made and shown if omitted."
        )
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--rate-limit", type=int, default=None, help="Requests per minute; 0 = none."
        )

    def handle(self, *args, **options):
        try:
            source = source_create(
                kind=options["kind"],
                slug=options["slug"],
                secret=options["secret"],
                name=options["name"],
                rate_limit_per_minute=options["rate_limit"],
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"Created {source.kind} source “{source.slug}”.")
        self.stdout.write(f"URL: {source.intake_url}")
        if not options["secret"]:
            self.stdout.write(f"Secret: {source.secret}")
