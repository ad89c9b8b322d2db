from celery import shared_task

from leadflow.duplicates import duplicates_detect
from leadflow.health import BEAT
from leadflow.services import heartbeat_record


@shared_task(acks_late=True)
def duplicates_detect_task() -> int:
    """Nightly full scan; safe to run twice (pairs are unique)."""
    return duplicates_detect()


@shared_task(name="leadflow.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> None:
    """Every BEAT_HEARTBEAT_SECONDS from beat: the tick /readyz judges beat's life by."""
    heartbeat_record(name=BEAT)
