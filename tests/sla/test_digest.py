"""The weekly digest: last week's figures to each manager, once per week however often
beat fires (two beats, a retry)."""

from __future__ import annotations

import pytest
from django.core import mail

from handoff import activities as handoff_activities
from handoff import verdicts as handoff_verdicts
from sla import tasks
from sla.models import DigestDelivery
from tests.sla.conftest import at, mql


def test_each_manager_gets_last_weeks_digest_once(kanto, time_machine, settings):
    settings.PUBLIC_BASE_URL = "https://leadflow.example.co.jp"
    _team, (alice, bob), manager = kanto
    time_machine.move_to(at(11, 30, 9), tick=False)  # Monday 9:00
    first = mql(alice, at(11, 24, 10))
    handoff_activities.activity_log(
        handoff=first, actor=alice, kind="call", outcome="reached", at=at(11, 24, 12)
    )
    handoff_verdicts.handoff_accept(
        handoff=first, actor=alice, bant={"budget": True, "need": True}, at=at(11, 25, 9)
    )
    mql(bob, at(11, 26, 10))  # never called: overdue
    bobs_today = mql(bob, at(11, 30, 8))  # this week: not in the figures, in the forecast

    assert tasks.weekly_digest_task() == 1
    assert tasks.weekly_digest_task() == 0

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [manager.email]
    assert message.subject == "LeadFlow weekly SLA digest, 11/23 – 11/29"
    assert "SLA figures of your teams, 2026/11/23 – 2026/11/29" in message.body
    assert "MQLs: 2" in message.body
    # Above a conversion band is good news: no ✗ after it.
    assert "MQL → SQL: 50.0% (Target: 20–30 %)\n" in message.body
    assert "Average time to first contact: 2.0 h (Target: ≤ 24 h)" in message.body
    assert "- kanto-rep2: 1 handoffs, first contact in time 0.0 %, breaches 1" in message.body
    assert "?from=2026-11-23&to=2026-11-29" in message.body
    # Speed to lead: bob's MQL of this morning must be called by Tuesday 8:00; one MQL in
    # four weeks arrived on a Tuesday 10:00-11:00 (1/4 = 0.25, shown 0.2).
    forecast = message.body.split("Deadlines about to break:\n")[1]
    assert forecast.startswith(
        "next 24 hours (11/30 09:00 – 12/01 09:00): 1 deadline, about 0.0 new MQLs expected\n"
        f"- {bobs_today.lead.full_name} · First contact · 12/01 08:00 · kanto-rep2\n"
        "next business day (12/01 09:00 – 12/01 18:00): 0 deadlines, about 0.2 new MQLs "
        "expected\nhttps://leadflow.example.co.jp/dashboard/speed/\n"
    )
    delivery = DigestDelivery.objects.get()
    assert (delivery.user, str(delivery.week_start), delivery.sent_at) == (
        manager,
        "2026-11-23",
        at(11, 30, 9),
    )


def test_a_failed_digest_is_sent_by_the_retry(kanto, time_machine, monkeypatch):
    from sla import services

    time_machine.move_to(at(11, 30, 9), tick=False)

    def broken(*args, **kwargs):
        raise OSError("SMTP down")

    monkeypatch.setattr(services, "send_mail", broken)
    with pytest.raises(OSError):
        services.digest_send_weekly()
    assert DigestDelivery.objects.count() == 0

    monkeypatch.undo()
    assert services.digest_send_weekly() == 1
    assert len(mail.outbox) == 1


def test_the_digest_is_on_the_beat_schedule_on_monday_morning(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sla-weekly-digest"]
    assert entry["task"] == "sla.tasks.weekly_digest_task"
    schedule = entry["schedule"]
    assert (schedule.day_of_week, schedule.hour, schedule.minute) == ({1}, {9}, {0})
    assert settings.CELERY_TIMEZONE == "Asia/Tokyo"
    assert settings.CELERY_BEAT_SCHEDULE["sla-sweep"]["schedule"] == 60.0
