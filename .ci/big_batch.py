"""The largest documented batch end to end: 5,000 signed events in one body posted to a
running intake (gunicorn), processed by a running Celery worker on PostgreSQL + Redis.

    python .ci/big_batch.py http://127.0.0.1:8766 <source slug> <secret> [--events 5000]

Waits until the inbound event is processed (at most --timeout seconds), then checks that
every item was applied and every lead created, and prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("slug")
    parser.add_argument("secret")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()

    import django

    django.setup()
    from integrations import signing
    from integrations.models import InboundEvent, InboundStatus
    from leadflow.models import EngagementEvent, Lead

    run = uuid.uuid4().hex[:8]
    # Compact events (the body limit is 1 MiB): a new lead each, a page view each.
    events = [
        {
            "id": f"big-{run}-{n}",
            "type": "page_view",
            "occurred_at": "2026-01-15T10:00:00+09:00",
            "lead": {"email": f"big-{run}-{n}@example.jp", "last_name": f"大量{n}"},
        }
        for n in range(args.events)
    ]
    body = json.dumps({"events": events}, ensure_ascii=False, separators=(",", ":")).encode()
    target = urlsplit(args.url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
    headers = {"Content-Type": "application/json", signing.HEADER: signing.sign(args.secret, body)}
    posted = time.monotonic()
    connection.request("POST", f"/api/v1/intake/{args.slug}/", body=body, headers=headers)
    response = connection.getresponse()
    answer = json.loads(response.read())
    if response.status != 202:
        print(f"big batch: the intake answered {response.status}: {answer}")
        return 1
    inbound_id = answer["id"]

    deadline = posted + args.timeout
    while True:
        inbound = InboundEvent.objects.get(pk=inbound_id)
        if inbound.status != InboundStatus.RECEIVED or time.monotonic() > deadline:
            break
        time.sleep(1)
    seconds = time.monotonic() - posted
    leads = Lead.objects.filter(email__startswith=f"big-{run}-").count()
    events_stored = EngagementEvent.objects.filter(external_id__startswith=f"big-{run}-").count()
    figures = {
        "events": args.events,
        "body_bytes": len(body),
        "status": inbound.status,
        "items_done": inbound.items_done,
        "applied": inbound.result.get("applied"),
        "failed": inbound.result.get("failed"),
        "attempts": inbound.attempts,
        "leads": leads,
        "engagement_events": events_stored,
        "seconds_to_processed": round(seconds, 1),
        "items_per_second": round(args.events / seconds, 1),
    }
    print(json.dumps(figures, indent=2))
    expected = (InboundStatus.PROCESSED, args.events, args.events, args.events)
    if (inbound.status, inbound.result.get("applied"), leads, events_stored) != expected:
        print(f"big batch: not processed whole within {args.timeout} s: {inbound.reason[:500]}")
        return 1
    print("big batch: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
