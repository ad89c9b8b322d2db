"""manage.py erase_person EMAIL --requested-by "ticket 4711" [--by USERNAME] [--lead ID]"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leadflow.errors import DomainError
from leadflow.models import User
from privacy.services import erasure_execute


class Command(BaseCommand):
    help = (
        "Erase a person's personal data (by e-mail or --lead ID) everywhere LeadFlow holds "
        "it, keeping the anonymous counts; records an erasure request and prints its counts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", nargs="?", help="the person's e-mail address")
        parser.add_argument("--lead", type=int, help="the lead id instead of an e-mail")
        parser.add_argument(
            "--requested-by",
            required=True,
            help="who asked and how (a ticket or reference, not the person's name)",
        )
        parser.add_argument("--by", help="username of the operator running this (recorded)")
        parser.add_argument("--note", default="", help="a note for the record (no personal data)")

    def handle(self, *args, **options) -> None:
        if bool(options["email"]) == bool(options["lead"]):
            raise CommandError("Give an e-mail address or --lead ID (one of them).")
        actor: User | str = "command:erase_person"
        if options["by"]:
            user = User.objects.filter(username=options["by"]).first()
            if user is None:
                raise CommandError(f"No user {options['by']!r}.")
            actor = user
        try:
            record = erasure_execute(
                email=options["email"] or None,
                lead_id=options["lead"],
                requested_by=options["requested_by"],
                actor=actor,
                note=options["note"],
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            json.dumps(
                {
                    "erasure_request": record.pk,
                    "lead_id": record.subject_lead_id,
                    "counts": record.counts,
                },
                indent=2,
            )
        )
