"""The dashboard's per-day sums (sla.kpis): which changes mark which MQL day stale, what a
refresh reads and leaves, and that the sums follow the handoffs after each change.

The clock is pinned at 2026-11-30 (Mon) 12:00 JST, as in test_metrics.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from django.db import connection, connections

from handoff import activities, routing, verdicts
from handoff.models import RejectionReason
from leadflow import lifecycle
from leadflow.lifecycle import lead_transition
from leadflow.merge import lead_merge
from leadflow.models import Stage
from sla.kpis import days, metrics
from sla.kpis.days import kpi_days_refresh, kpi_days_refresh_all
from sla.kpis.metrics import MetricsFilter
from sla.models import KpiHandoffDay, KpiStaleDay, KpiState, KpiTimerDay, SlaSettings
from sla.services import timers_sweep
from tests.factories import LeadFactory
from tests.sla.conftest import at, mql

NOW = at(11, 30, 12)
NOVEMBER = MetricsFilter(start=dt.date(2026, 11, 1), end=dt.date(2026, 11, 30))


def stale_days() -> list[dt.date]:
    return sorted(set(KpiStaleDay.objects.values_list("day", flat=True)))


@pytest.fixture
def pinned(time_machine):
    time_machine.move_to(NOW, tick=False)


def test_an_mql_marks_its_day_and_the_refresh_sums_it(kanto, pinned):
    alice = kanto[1][0]
    mql(alice, at(11, 20, 23, 30))  # 23:30 JST is still the 20th, 14:30 UTC

    assert stale_days() == [dt.date(2026, 11, 20)]
    assert metrics.summary(NOVEMBER)["mqls"] == 0  # not summed yet

    result = kpi_days_refresh(now=NOW)

    assert (result.days, result.more, result.skipped) == ([dt.date(2026, 11, 20)], False, False)
    assert stale_days() == []
    assert list(KpiHandoffDay.objects.values_list("day", "rep_id", "source", "mqls", "open")) == [
        (dt.date(2026, 11, 20), alice.pk, "web", 1, 1)
    ]
    assert sorted(KpiTimerDay.objects.values_list("kind", "known", "late", "running")) == [
        ("first_contact", 1, 1, 0),  # due 11-21 23:30, not met: late at NOW
        ("verdict", 0, 0, 1),  # due 11-30 18:00 (weekend, 11-23 holiday): still running
    ]
    assert metrics.summary(NOVEMBER)["mqls"] == 1
    assert KpiState.objects.get().refreshed_at == NOW
    assert metrics.summary(NOVEMBER)["as_of"] == NOW


def test_each_handoff_change_marks_the_mql_day(kanto, pinned):
    alice, bob = kanto[1]
    handoff = mql(alice, at(11, 25, 10))
    kpi_days_refresh_all(now=NOW)

    activities.activity_log(
        handoff=handoff, actor=alice, kind="call", outcome="no_answer", at=at(11, 25, 11)
    )
    assert stale_days() == [dt.date(2026, 11, 25)]
    kpi_days_refresh_all(now=NOW)

    routing.handoff_reassign(handoff=handoff, to_rep=bob, actor=kanto[2], reason="休暇")
    assert stale_days() == [dt.date(2026, 11, 25)]
    kpi_days_refresh_all(now=NOW)
    assert list(KpiHandoffDay.objects.values_list("rep_id", "contacted")) == [(bob.pk, 1)]

    verdicts.handoff_reject(
        handoff=handoff,
        actor=bob,
        reason=RejectionReason.objects.get(code="no_budget"),
        comment="来期",
        at=at(11, 26, 10),
    )
    assert stale_days() == [dt.date(2026, 11, 25)]
    kpi_days_refresh_all(now=NOW)
    assert list(
        KpiHandoffDay.objects.values_list("rejected", "rejected_with_reason", "rejection_reason")
    ) == [(1, 1, RejectionReason.objects.get(code="no_budget").pk)]


def test_a_lead_won_weeks_later_marks_its_mql_day_not_today(kanto, pinned):
    alice = kanto[1][0]
    handoff = mql(alice, at(11, 2, 10))
    activities.activity_log(
        handoff=handoff, actor=alice, kind="call", outcome="reached", at=at(11, 2, 11)
    )
    verdicts.handoff_accept(
        handoff=handoff, actor=alice, bant={"budget": True, "need": True}, at=at(11, 3, 10)
    )
    kpi_days_refresh_all(now=NOW)
    assert metrics.summary(NOVEMBER)["won"] == 0

    lifecycle.lead_mark_won(lead=handoff.lead, actor=alice, at=at(11, 30, 11))

    assert stale_days() == [dt.date(2026, 11, 2)]
    kpi_days_refresh_all(now=NOW)
    assert metrics.summary(NOVEMBER)["won"] == 1


def test_a_stage_change_outside_the_won_stages_marks_nothing(kanto, pinned):
    alice = kanto[1][0]
    handoff = mql(alice, at(11, 20, 10))
    kpi_days_refresh_all(now=NOW)

    verdicts.handoff_accept(
        handoff=handoff, actor=alice, bant={"budget": True, "need": True}, at=at(11, 21, 10)
    )
    KpiStaleDay.objects.all().delete()  # the verdict's own mark
    lead_transition(lead=handoff.lead, to_stage=Stage.OPPORTUNITY, actor=alice, at=NOW)

    assert stale_days() == []


def test_the_sweep_marks_the_days_it_breaches(kanto, time_machine):
    alice = kanto[1][0]
    time_machine.move_to(at(11, 20, 9), tick=False)
    mql(alice, at(11, 20, 9))
    kpi_days_refresh_all()
    assert KpiTimerDay.objects.get(kind="first_contact").running == 1

    time_machine.move_to(NOW, tick=False)
    timers_sweep(now=NOW)

    assert stale_days() == [dt.date(2026, 11, 20)]
    kpi_days_refresh_all(now=NOW)
    assert KpiTimerDay.objects.get(kind="first_contact").late == 1


def test_a_merge_marks_the_kept_leads_days(kanto, pinned):
    alice = kanto[1][0]
    handoff = mql(alice, at(11, 10, 10))
    other = LeadFactory(email="other@example.jp")
    kpi_days_refresh_all(now=NOW)

    lead_merge(keep=handoff.lead, merge=other, actor=kanto[2])

    assert stale_days() == [dt.date(2026, 11, 10)]


def test_a_mark_committed_during_the_refresh_stays_for_the_next_one(kanto, pinned, monkeypatch):
    alice = kanto[1][0]
    mql(alice, at(11, 20, 10))
    recompute = days.kpi_days_recompute

    def recompute_and_meanwhile_a_change(days, *, now):
        recompute(days, now=now)
        KpiStaleDay.objects.create(day=dt.date(2026, 11, 20))  # a change after the read

    monkeypatch.setattr(days, "kpi_days_recompute", recompute_and_meanwhile_a_change)
    kpi_days_refresh(now=NOW)

    assert stale_days() == [dt.date(2026, 11, 20)]


def test_the_refresh_works_off_many_days_in_turns(kanto, pinned):
    alice = kanto[1][0]
    for day in range(1, 11):
        mql(alice, at(11, day, 10))

    first = kpi_days_refresh(now=NOW, max_days=7)

    assert (len(first.days), first.more) == (7, True)
    assert stale_days() == [dt.date(2026, 11, day) for day in (8, 9, 10)]
    assert kpi_days_refresh_all(now=NOW) == 3
    assert KpiHandoffDay.objects.count() == 10


def test_rebuild_marks_every_mql_day(kanto, pinned):
    alice = kanto[1][0]
    for day in (3, 3, 17):
        mql(alice, at(11, day, 10))
    kpi_days_refresh_all(now=NOW)

    assert days.kpi_days_rebuild() == 2
    assert stale_days() == [dt.date(2026, 11, 3), dt.date(2026, 11, 17)]


def test_rebuild_drops_the_sums_of_deleted_handoffs(kanto, pinned):
    handoff = mql(kanto[1][0], at(11, 6, 10))
    kpi_days_refresh_all(now=NOW)
    handoff.delete()  # e.g. the lead deleted in the admin: nothing marks its day

    assert days.kpi_days_rebuild() == 1
    kpi_days_refresh_all(now=NOW)
    assert (KpiHandoffDay.objects.count(), KpiTimerDay.objects.count()) == (0, 0)


def test_changing_the_agreed_settings_in_the_admin_recomputes_everything(
    kanto, pinned, admin_client
):
    alice = kanto[1][0]
    mql(alice, at(11, 12, 10), complete=False)
    kpi_days_refresh_all(now=NOW)
    assert metrics.marketing(NOVEMBER)["complete"] == 0
    agreed = SlaSettings.objects.get()

    response = admin_client.post(
        f"/admin/sla/slasettings/{agreed.pk}/change/",
        {
            "min_attempts_not_reachable": 3,
            "not_reachable_reason_code": "not_reachable",
            "compliance_target_percent": 90,
            "monthly_mql_target": 100,
            "required_fields": '["email"]',
            "completeness_target_percent": 95,
        },
    )

    assert response.status_code == 302, response.content
    assert stale_days() == [dt.date(2026, 11, 12)]
    kpi_days_refresh_all(now=NOW)
    assert metrics.marketing(NOVEMBER)["complete"] == 1


def test_changing_only_a_target_in_the_admin_recomputes_nothing(kanto, pinned, admin_client):
    # Targets are read live by the page; only the summed settings need the days again.
    mql(kanto[1][0], at(11, 12, 10))
    kpi_days_refresh_all(now=NOW)
    agreed = SlaSettings.objects.get()

    response = admin_client.post(
        f"/admin/sla/slasettings/{agreed.pk}/change/",
        {
            "min_attempts_not_reachable": agreed.min_attempts_not_reachable,
            "not_reachable_reason_code": agreed.not_reachable_reason_code,
            "compliance_target_percent": 80,
            "monthly_mql_target": 250,
            "required_fields": json.dumps(agreed.required_fields),
            # The admin posts a callable default's initial value too (show_hidden_initial).
            "initial-required_fields": json.dumps(agreed.required_fields),
            "completeness_target_percent": agreed.completeness_target_percent,
        },
    )

    assert response.status_code == 302, response.content
    assert stale_days() == []
    assert SlaSettings.objects.get().monthly_mql_target == 250


def test_a_deleted_rep_leaves_the_sums_readable(kanto, pinned):
    # The sums keep the rep's id without a constraint; the page shows the id.
    alice = kanto[1][0]
    mql(alice, at(11, 12, 10))
    kpi_days_refresh_all(now=NOW)
    KpiHandoffDay.objects.update(rep_id=999_999)
    KpiTimerDay.objects.update(rep_id=999_999)

    assert [row["rep"] for row in metrics.per_rep(NOVEMBER)] == ["999999"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_refreshes_at_once_one_skips(seeded, pinned):
    from tests.handoff.helpers import make_team

    _team, (alice, _bob), _manager = make_team("Kanto", reps=2, default=True)
    mql(alice, at(11, 20, 10))
    inside = threading.Event()
    release = threading.Event()
    recompute = days.kpi_days_recompute
    results = {}

    def slow_recompute(days, *, now):
        recompute(days, now=now)
        inside.set()
        release.wait(10)

    def first():
        try:
            results["first"] = kpi_days_refresh(now=NOW)
        finally:
            connections.close_all()

    days.kpi_days_recompute = slow_recompute
    try:
        thread = threading.Thread(target=first)
        thread.start()
        assert inside.wait(10)
        results["second"] = kpi_days_refresh(now=NOW)
        release.set()
        thread.join(10)
    finally:
        days.kpi_days_recompute = recompute
    assert connection.vendor == "postgresql"
    assert (results["second"].skipped, results["second"].days) == (True, [])
    assert results["first"].days == [dt.date(2026, 11, 20)]
    assert KpiHandoffDay.objects.get().mqls == 1


def test_the_refresh_task_goes_on_while_days_remain(kanto, pinned, monkeypatch):
    from sla import tasks

    alice = kanto[1][0]
    for day in range(1, 10):
        mql(alice, at(11, day, 10))
    again = []
    monkeypatch.setattr(tasks.kpi_refresh_task, "delay", lambda: again.append(True))

    assert tasks.kpi_refresh_task() == 7
    assert again == [True]
    assert tasks.kpi_refresh_task() == 2
    assert again == [True]  # nothing left: no second run


def test_the_nightly_rebuild_task_marks_and_starts_a_refresh(kanto, pinned, monkeypatch):
    from sla import tasks

    mql(kanto[1][0], at(11, 4, 10))
    kpi_days_refresh_all(now=NOW)
    started = []
    monkeypatch.setattr(tasks.kpi_refresh_task, "delay", lambda: started.append(True))

    assert tasks.kpi_rebuild_task() == 1
    assert (stale_days(), started) == ([dt.date(2026, 11, 4)], [True])


def test_beat_refreshes_every_minute_and_rebuilds_at_night(settings):
    refresh = settings.CELERY_BEAT_SCHEDULE["sla-kpi-refresh"]
    rebuild = settings.CELERY_BEAT_SCHEDULE["sla-kpi-rebuild"]

    assert (refresh["task"], refresh["schedule"]) == ("sla.tasks.kpi_refresh_task", 60.0)
    assert rebuild["task"] == "sla.tasks.kpi_rebuild_task"
    assert (rebuild["schedule"].hour, rebuild["schedule"].minute) == ({3}, {30})
