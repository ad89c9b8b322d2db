"""What the lists sort and filter on without touching the timers: the stored next deadline
(Handoff.next_due_at / next_due_kind, kept by sla.services), and Lead.has_handoff (kept by
the database's triggers) that narrows the search to leads with handoffs."""

import datetime as dt
import importlib

import pytest
from django.db import connection

from handoff.activities import activity_log
from handoff.models import Handoff
from handoff.verdicts import handoff_reject
from leadflow.lifecycle import lead_transition
from leadflow.merge import lead_merge
from leadflow.models import Lead, Stage
from sla.models import SlaTimer
from sla.services import timers_sweep
from tests.factories import LeadFactory
from tests.handoff.helpers import make_mql, make_mql_for, make_team, retime

UTC = dt.UTC


@pytest.fixture
def kanto(db):
    return make_team("Kanto", reps=2, default=True)


def _due(handoff) -> tuple:
    handoff.refresh_from_db(fields=["next_due_at", "next_due_kind"])
    return handoff.next_due_at, handoff.next_due_kind


def _timer_due(handoff, kind: str) -> dt.datetime:
    return SlaTimer.objects.get(handoff=handoff, kind=kind).due_at


def test_the_next_deadline_follows_the_timers_from_start_to_verdict(kanto):
    _team, (alice, bob), _ = kanto
    handoff = make_mql_for(alice, [bob])
    assert _timer_due(handoff, "first_contact") < _timer_due(handoff, "verdict")
    assert _due(handoff) == (_timer_due(handoff, "first_contact"), "first_contact")

    activity_log(handoff=handoff, actor=alice, kind="call", outcome="reached")
    assert _due(handoff) == (_timer_due(handoff, "verdict"), "verdict")

    handoff_reject(handoff=handoff, actor=alice, reason="timing", comment="next quarter")
    assert _due(handoff) == (None, "")


def test_a_first_contact_logged_late_still_moves_the_deadline_to_the_verdict(kanto):
    _team, (alice, bob), _ = kanto
    handoff = make_mql_for(alice, [bob])
    retime(
        SlaTimer.objects.filter(handoff=handoff, kind="first_contact"),
        due_at=dt.datetime(2020, 1, 6, 1, 0, tzinfo=UTC),
    )

    activity_log(handoff=handoff, actor=alice, kind="call", outcome="reached")

    late = SlaTimer.objects.get(handoff=handoff, kind="first_contact")
    assert (late.status, late.met_at is not None) == ("breached", True)
    assert _due(handoff) == (_timer_due(handoff, "verdict"), "verdict")


def test_a_breach_keeps_the_overdue_deadline_the_most_urgent(kanto):
    _team, (alice, bob), _ = kanto
    handoff = make_mql_for(alice, [bob])
    overdue_at = dt.datetime(2020, 1, 6, 1, 0, tzinfo=UTC)
    retime(SlaTimer.objects.filter(handoff=handoff, kind="first_contact"), due_at=overdue_at)

    result = timers_sweep(now=dt.datetime.now(UTC))

    assert len(result.breached) == 1
    assert _due(handoff) == (overdue_at, "first_contact")


def test_the_migration_fills_the_deadline_and_the_flag_of_existing_rows(kanto):
    _team, (alice, bob), _ = kanto
    contacted = make_mql_for(alice, [bob])
    activity_log(handoff=contacted, actor=alice, kind="call", outcome="reached")
    fresh = make_mql_for(alice, [bob])
    without = LeadFactory()
    # As the rows stood before the migration: no stored deadline, no flag.
    Handoff.objects.update(next_due_at=None, next_due_kind="")
    with connection.cursor() as cursor:
        on_table = " ON leadflow_lead" if connection.vendor == "postgresql" else ""
        cursor.execute(f"DROP TRIGGER lead_keeps_has_handoff{on_table}")  # rolled back
        cursor.execute("UPDATE leadflow_lead SET has_handoff = false")
    migration = importlib.import_module("handoff.migrations.0008_next_due_at")

    with connection.cursor() as cursor:
        cursor.execute(migration.NEXT_DUE)
        cursor.execute(migration.HAS_HANDOFF)

    assert _due(contacted) == (_timer_due(contacted, "verdict"), "verdict")
    assert _due(fresh) == (_timer_due(fresh, "first_contact"), "first_contact")
    flags = dict(Lead.objects.values_list("pk", "has_handoff"))
    assert flags == {contacted.lead_id: True, fresh.lead_id: True, without.pk: False}


def test_a_lead_is_flagged_by_its_first_handoff_and_a_stale_copy_cannot_clear_it(kanto):
    lead = LeadFactory(stage=Stage.KNOWN)
    stale = Lead.objects.get(pk=lead.pk)
    assert stale.has_handoff is False

    lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")
    assert Lead.objects.get(pk=lead.pk).has_handoff is True

    stale.job_title = "部長"
    stale.save()  # a full save of a copy loaded before the handoff existed

    assert Lead.objects.values_list("has_handoff", "job_title").get(pk=lead.pk) == (True, "部長")


def test_a_merge_that_moves_a_handoff_flags_the_kept_lead_and_search_finds_it(client, kanto):
    _team, _reps, manager = kanto
    merged = make_mql(last_name="合併元")
    # An open handoff blocks a merge: closed first, as the merge's refusal asks.
    handoff_reject(handoff=merged, actor=merged.assigned_to, reason="duplicate", comment="重複")
    keep = LeadFactory(stage=Stage.SQL, last_name="存続先", first_name="花子")
    assert keep.has_handoff is False

    lead_merge(keep=keep, merge=merged.lead, actor="marketing-review")

    assert Lead.objects.get(pk=keep.pk).has_handoff is True
    client.force_login(manager)
    found = client.get("/inbox/list/", {"q": "存続先花子"}).context["rows"]
    assert [h.pk for h in found] == [merged.pk]
