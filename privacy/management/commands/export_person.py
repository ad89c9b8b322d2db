"""manage.py export_person EMAIL [--lead ID] [--output FILE]"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from leadflow.errors import DomainError
from privacy.services import person_data_export


class Command(BaseCommand):
    help = "Write everything LeadFlow holds about one person as JSON (stdout or --output)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", nargs="?", help="the person's e-mail address")
        parser.add_argument("--lead", type=int, help="the lead id instead of an e-mail")
        parser.add_argument("--output", "-o", help="file to write (default: stdout)")

    def handle(self, *args, **options) -> None:
        if bool(options["email"]) == bool(options["lead"]):
            raise CommandError("Give an e-mail address or --lead ID (one of them).")
        try:
            document = person_data_export(
                actor="command:export_person",
                email=options["email"] or None,
                lead_id=options["lead"],
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        text = json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
        if options["output"]:
            Path(options["output"]).write_text(text + "\n", encoding="utf-8")
            self.stderr.write(f"Wrote {options['output']}")
        else:
            self.stdout.write(text)
