"""A bulk move and a per-lead change of one of its leads at the same moment (PostgreSQL):
the bulk move skips the lead the other transaction holds instead of waiting for it."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from handoff.models import Handoff
from leadflow.lifecycle import BulkMove, leads_transition_bulk
from leadflow.models import Lead, Stage, StageTransition
from tests.factories import LeadFactory
from tests.handoff.helpers import make_team

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_bulk_move_skips_a_lead_another_transaction_holds_and_does_not_wait():
    make_team("Kanto", reps=2, default=True)
    free, held = LeadFactory(), LeadFactory()
    locked, release = threading.Event(), threading.Event()

    def rep_edits_the_lead() -> None:
        try:
            with transaction.atomic():
                Lead.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=rep_edits_the_lead)
    thread.start()
    try:
        assert locked.wait(timeout=30)
        with connection.cursor() as cursor:
            # Waiting for the held lead would fail the test here instead of hanging it.
            cursor.execute("SET lock_timeout = '5s'")
        written = leads_transition_bulk(
            moves=[
                BulkMove(lead_id=free.pk, expected_from=Stage.KNOWN),
                BulkMove(lead_id=held.pk, expected_from=Stage.KNOWN),
            ],
            to_stage=Stage.MQL,
            actor="scoring",
        )
    finally:
        release.set()
        thread.join(timeout=30)

    assert [t.lead_id for t in written] == [free.pk]
    assert Lead.objects.get(pk=held.pk).stage == Stage.KNOWN
    assert not StageTransition.objects.filter(lead=held).exists()
    assert not Handoff.objects.filter(lead=held).exists()
    assert Handoff.objects.filter(lead=free, assigned_to__isnull=False).count() == 1
