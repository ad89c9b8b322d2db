from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from integrations.services import leads_import_csv


class Command(BaseCommand):
    help = (
        "Import leads from a CSV exported from Excel (UTF-8 with or without BOM, or "
        "Shift_JIS/CP932). Leads are matched by e-mail, so running it twice is harmless."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--dry-run", action="store_true", help="Check every row, write nothing."
        )
        parser.add_argument("--source", default="csv", help="Lead source stored on new leads.")
        parser.add_argument(
            "--event",
            default="",
            help="Trade show the cards come from (e.g. 'CEATEC 2026'): records a visit on "
            "every lead, and is the source of new leads unless --source is given.",
        )

    def handle(self, *args, **options):
        path: Path = options["file"]
        try:
            data = path.read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}") from None
        source = options["source"]
        if options["event"] and source == "csv":
            source = f"展示会:{options['event']}"
        report = leads_import_csv(
            data=data, source=source, dry_run=options["dry_run"], event=options["event"]
        )
        out = self.stdout
        if report.encoding:
            out.write(f"Encoding: {report.encoding}")
        for header, target in report.columns.items():
            out.write(f"  column {header} → {target}")
        for header in report.ignored_columns:
            out.write(f"  column {header} (ignored)")
        verb = "would be " if report.dry_run else ""
        out.write(
            f"Rows: {report.rows}; {verb}created: {report.created}; {verb}updated: {report.updated}"
            + ("" if report.dry_run else f"; unchanged: {report.unchanged}")
            + f"; errors: {len(report.errors)}"
        )
        for line, message in report.errors:
            self.stderr.write(f"line {line}: {message}")
        if report.dry_run:
            out.write("Dry run: nothing was written.")
        if report.errors and not (report.created or report.updated or report.unchanged):
            raise CommandError("Nothing could be imported.")
