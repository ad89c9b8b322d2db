"""The speed-to-lead timeline of one MQL, written by the services that make each instant
happen, once: from the MA event through intake, routing, the rep's e-mail, the first view,
the first call and the verdict, to the SFA. Pinned clock, real services, a local SFA."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from handoff.activities import activity_log
from handoff.models import Handoff, HandoffTimeline, TimelineStaleDay
from handoff.notifications import assignment_notify
from handoff.verdicts import handoff_accept
from integrations.outbound.delivery import outbox_deliver_due
from leadflow.lifecycle import lead_transition
from leadflow.models import Stage
from leadflow.services import event_record
from sla.kpis import speed_metrics
from sla.kpis.days import kpi_days_refresh_all
from sla.kpis.metrics import MetricsFilter
from tests.factories import LeadFactory
from tests.handoff.helpers import make_team
from tests.integrations.conftest import T0, deliver, make_source, make_webhook, post

pytestmark = pytest.mark.django_db

PERSON = {
    "email": "yamada@example.co.jp",
    "last_name": "山田",
    "job_title": "部長",
    "company": "株式会社サンプル",
    "employee_count": 1200,
    "industry": "製造業",
    "address": "東京都千代田区丸の内1-1-1",
}


def test_each_instant_is_stored_once_by_the_service_that_makes_it(
    client, clock, no_kick, receiver, mailoutbox
):
    _team, (rep,), manager = make_team("Kanto", reps=1, default=True)
    make_webhook(f"{receiver.url}/hook")
    source = make_source("generic")
    body = {
        "id": "evt-1",
        "type": "consultation",  # a hand-raiser: MQL at once
        "occurred_at": (T0 - dt.timedelta(minutes=7)).isoformat(),  # the MA tool's sync
        "lead": PERSON,
    }

    deliver(client, source, body)  # received and processed at T0

    handoff = Handoff.objects.get(lead__email=PERSON["email"])
    timeline = HandoffTimeline.objects.get(handoff=handoff)
    assert timeline.event_occurred_at == T0 - dt.timedelta(minutes=7)
    assert timeline.received_at == T0
    assert timeline.processed_at == T0
    assert timeline.mql_at == T0
    assert timeline.assigned_at == T0  # routed in the same transaction
    assert timeline.source == source.slug
    assert timeline.notified_at is None

    clock.shift(30)
    assignment = handoff.assignments.get()
    assignment_notify(assignment_id=assignment.pk)
    clock.shift(30)
    assignment_notify(assignment_id=assignment.pk)  # a redelivered task sends nothing
    assert len(mailoutbox) == 1

    clock.shift(60)
    client.force_login(manager)
    client.get(f"/inbox/handoffs/{handoff.pk}/")  # a manager's look is not a pickup
    timeline.refresh_from_db()
    assert timeline.opened_at is None
    client.force_login(rep)
    client.get(f"/inbox/handoffs/{handoff.pk}/")
    clock.shift(60)
    client.get(f"/inbox/handoffs/{handoff.pk}/")  # the second view changes nothing

    clock.shift(240)
    activity_log(handoff=handoff, actor=rep, kind="call", outcome="reached")
    clock.shift(60)
    # A call written up afterwards, dated before the first one: it is the first contact.
    activity_log(
        handoff=handoff,
        actor=rep,
        kind="call",
        outcome="no_answer",
        at=T0 + dt.timedelta(seconds=400),
    )
    clock.shift(3600)
    handoff_accept(handoff=handoff, actor=rep, bant={"budget": True, "need": True})
    clock.shift(5)
    stats = outbox_deliver_due()
    clock.shift(5)
    outbox_deliver_due()  # nothing left: the SFA instant stays

    timeline.refresh_from_db()
    assert stats.delivered == 2  # the MQL and the SQL messages
    assert timeline.notified_at == T0 + dt.timedelta(seconds=30)
    assert timeline.opened_at == T0 + dt.timedelta(seconds=120)
    assert timeline.first_contact_at == T0 + dt.timedelta(seconds=400)
    assert timeline.decided_at == T0 + dt.timedelta(seconds=4080)
    assert timeline.sfa_delivered_at == T0 + dt.timedelta(seconds=4085)

    # Each write that changed the timeline marked its MQL day for the per-day figures:
    # the e-mail, the first view, the first contact twice (set, then moved back), the
    # verdict, the SFA; the redelivered task, the second view and delivery marked nothing.
    day = timezone.localdate(T0)
    assert list(TimelineStaleDay.objects.values_list("day", flat=True)) == [day] * 6
    kpi_days_refresh_all()
    assert not TimelineStaleDay.objects.exists()
    overall = speed_metrics.hop_figures(MetricsFilter(start=day, end=day))["overall"]
    assert overall["pickup"] == {"n": 1, "median_seconds": 120.0, "p90_seconds": 120.0}
    assert overall["contact"] == {"n": 1, "median_seconds": 280.0, "p90_seconds": 280.0}
    assert overall["sfa"] == {"n": 1, "median_seconds": 4085.0, "p90_seconds": 4085.0}


def test_a_redelivered_webhook_leaves_the_timeline_as_it_was(client, clock, no_kick):
    make_team("Kanto", reps=1, default=True)
    source = make_source("generic")
    body = {"id": "evt-1", "type": "consultation", "occurred_at": T0.isoformat(), "lead": PERSON}
    deliver(client, source, body)
    before = HandoffTimeline.objects.values().get()

    clock.shift(600)
    response = post(client, source, body)

    assert response.status_code == 200  # recognised as a duplicate
    assert HandoffTimeline.objects.values().get() == before


def test_an_mql_made_long_after_its_last_event_has_no_ma_hops(clock, no_kick):
    make_team("Kanto", reps=1, default=True)
    lead = LeadFactory()
    event_record(lead=lead, kind="email_open", occurred_at=T0, received_at=T0)
    clock.shift(3 * 86400)  # a model change makes it an MQL three days later

    lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")

    timeline = HandoffTimeline.objects.get(handoff__lead=lead)
    assert (timeline.event_occurred_at, timeline.received_at, timeline.processed_at) == (
        None,
        None,
        None,
    )
    assert timeline.mql_at == T0 + dt.timedelta(days=3)
