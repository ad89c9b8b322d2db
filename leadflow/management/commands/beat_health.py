from django.core.management.base import BaseCommand, CommandError

from leadflow.health import beat_check


class Command(BaseCommand):
    help = (
        "Exit 0 when beat's last heartbeat is younger than BEAT_STALE_SECONDS, 1 otherwise "
        "(docker-compose's health check of beat)."
    )

    def handle(self, *args, **options) -> None:
        # The health check has its own start period for beat's first tick.
        check = beat_check(wait_for_first_tick=False)
        if not check.ok:
            raise CommandError(f"beat: {check.status}")
        self.stdout.write(f"beat: ok, last tick {check.age_seconds:.0f} s ago")
