from django.core.management.base import BaseCommand

from leadflow.demo.data import DEMO_PASSWORD, USERS


class Command(BaseCommand):
    help = "Print where LeadFlow runs and the demo logins."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, url: str, **options) -> None:
        lines = [
            "",
            f"  LeadFlow is starting on {url}  (admin: {url}admin/)",
            "  Demo logins (password for all: " + DEMO_PASSWORD + "):",
        ]
        for username, last, first, role, _staff in USERS:
            lines.append(f"    {username:<9} {last} {first}  — {role or 'superuser'}")
        lines += ["  Ctrl-C stops the web server, the Celery worker and beat.", ""]
        self.stdout.write("\n".join(lines))
