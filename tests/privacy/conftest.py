"""Shared scene for privacy tests: one person known through every part of LeadFlow."""

from __future__ import annotations

import pytest

from handoff import activities as handoff_activities
from handoff import verdicts as handoff_verdicts
from handoff.models import Handoff, RejectionReason
from integrations.models import InboundStatus
from integrations.outbound.models import (
    FeedbackEvent,
    FeedbackOutcome,
    FeedbackResult,
    MessageStatus,
    OutboxMessage,
)
from leadflow.lifecycle import lead_transition
from leadflow.models import Lead, Stage
from tests.handoff.helpers import make_team
from tests.integrations.conftest import deliver, make_source, make_webhook, stored_score

EMAIL = "yamada@example.co.jp"

MAUTIC_BODY = {
    "mautic.form_on_submit": [
        {
            "submission": {
                "id": 501,
                "form": {"id": 4, "name": "Whitepaper", "alias": "whitepaper"},
                "lead": {
                    "id": 7701,
                    "points": 20,
                    "fields": {
                        "core": {
                            "email": {"value": "Yamada@Example.co.jp"},
                            "firstname": {"value": "太郎"},
                            "lastname": {"value": "山田"},
                            "phone": {"value": "03-1234-5678"},
                            "company": {"value": "株式会社サンプル"},
                        }
                    },
                },
                "dateSubmitted": "2026-01-15T10:00:00+09:00",
                "referer": "https://example.jp/dl?utm_source=mail&mail=Yamada%40Example.co.jp#f",
                "results": {"email": "Yamada@Example.co.jp", "question": "予算は 500万円です"},
            },
            "timestamp": "2026-01-15T10:00:01+09:00",
        }
    ]
}
OTHER_BODY = {
    "mautic.page_on_hit": [
        {
            "hit": {
                "dateHit": "2026-01-15T11:00:00+09:00",
                "url": "https://example.jp/pricing",
                "lead": {"id": 8800, "fields": {"core": {"email": {"value": "sato@example.jp"}}}},
            },
            "timestamp": "2026-01-15T11:00:01+09:00",
        }
    ]
}


@pytest.fixture
def person(client, db):
    """Yamada, known through a Mautic form, made an MQL, rejected by the rep with a comment
    (an outbox message for each), plus a stranger's webhook that must stay as it is."""
    _team, (rep,), _manager = make_team("Kanto", reps=1, default=True)
    destination = make_webhook("http://127.0.0.1:9/hook", events=["mql_created", "rejected"])
    source = make_source("mautic")
    mine = deliver(client, source, MAUTIC_BODY)
    other = deliver(client, source, OTHER_BODY)
    assert mine.status == other.status == InboundStatus.PROCESSED
    lead = Lead.objects.get(email=EMAIL)
    if lead.stage != Stage.MQL:
        lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring", reason="fit 40, eng 60")
    stored_score(lead, fit=40, engagement=60)
    handoff = Handoff.objects.get(lead=lead)
    handoff_activities.activity_log(
        handoff=handoff, actor=rep, kind="call", outcome="reached", note="山田さん: 来期に検討"
    )
    handoff_verdicts.handoff_reject(
        handoff=handoff,
        actor=rep,
        reason=RejectionReason.objects.get(code="timing"),
        comment="山田様は4月に異動予定",
    )
    FeedbackEvent.objects.create(
        destination=destination,
        event_id="sf-1",
        lead=lead,
        outcome=FeedbackOutcome.LOST,
        reason="山田様より辞退",
        occurred_at=lead.created_at,
        result=FeedbackResult.UNCHANGED,
        from_stage="recycled",
        to_stage="recycled",
        payload={"lead": EMAIL, "outcome": "lost", "reason": "山田様より辞退"},
    )
    # A pending message must not go out with the person's data after the erasure.
    OutboxMessage.objects.filter(lead=lead, event="rejected").update(status=MessageStatus.PENDING)
    OutboxMessage.objects.filter(lead=lead, event="mql_created").update(
        status=MessageStatus.DELIVERED, response_body='{"echo": "yamada@example.co.jp"}'
    )
    return {"lead": Lead.objects.get(pk=lead.pk), "mine": mine, "other": other, "rep": rep}
