from celery import shared_task

from leadflow.duplicates import duplicates_detect


@shared_task(acks_late=True)
def duplicates_detect_task() -> int:
    """Nightly full scan; safe to run twice (pairs are unique)."""
    return duplicates_detect()
