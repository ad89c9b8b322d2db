import threading

import pytest
from django.db import connection, connections

from leadflow.errors import InvalidTransition, NotFound
from leadflow.lifecycle import ALLOWED, Actor, lead_transition
from leadflow.models import Lead, Stage, StageTransition
from tests.factories import LeadFactory, UserFactory

ALL_MOVES = sorted((src, dst) for src, dsts in ALLOWED.items() for dst in dsts)


def test_every_stage_has_an_entry_in_the_table():
    assert set(ALLOWED) == set(Stage.values)


@pytest.mark.django_db
@pytest.mark.parametrize(("from_stage", "to_stage"), ALL_MOVES)
def test_every_allowed_move_succeeds_and_is_audited(from_stage, to_stage):
    lead = LeadFactory(stage=from_stage)

    record = lead_transition(lead=lead, to_stage=to_stage, actor="test-suite")

    lead.refresh_from_db()
    assert lead.stage == to_stage
    assert record.from_stage == from_stage
    assert record.to_stage == to_stage
    assert StageTransition.objects.filter(lead=lead).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("from_stage", "to_stage"),
    [
        (Stage.KNOWN, Stage.CUSTOMER),
        (Stage.KNOWN, Stage.SQL),
        (Stage.ANONYMOUS, Stage.MQL),
        (Stage.MQL, Stage.MQL),
        (Stage.MQL, Stage.OPPORTUNITY),
        (Stage.RECYCLED, Stage.SQL),
        (Stage.CUSTOMER, Stage.RECYCLED),
        (Stage.DISQUALIFIED, Stage.MQL),
    ],
)
def test_forbidden_moves_raise_a_readable_error_and_write_nothing(from_stage, to_stage):
    lead = LeadFactory(stage=from_stage)

    with pytest.raises(InvalidTransition) as caught:
        lead_transition(lead=lead, to_stage=to_stage, actor="test-suite")

    assert caught.value.message == (
        f"A lead cannot move from {Stage(from_stage).label} to {Stage(to_stage).label}."
    )
    lead.refresh_from_db()
    assert lead.stage == from_stage
    assert StageTransition.objects.count() == 0


@pytest.mark.django_db
def test_known_to_customer_message_names_both_stages():
    lead = LeadFactory(stage=Stage.KNOWN)

    with pytest.raises(InvalidTransition, match="from Known lead to Customer"):
        lead_transition(lead=lead, to_stage=Stage.CUSTOMER, actor="test-suite")


@pytest.mark.django_db
def test_audit_row_records_user_reason_context_and_time():
    rep = UserFactory(username="rep-a")
    lead = LeadFactory(stage=Stage.MQL)

    record = lead_transition(
        lead=lead,
        to_stage=Stage.RECYCLED,
        actor=rep,
        reason="no budget this year",
        context={"handoff_id": 7},
    )

    stored = StageTransition.objects.get(pk=record.pk)
    assert stored.lead_id == lead.pk
    assert (stored.from_stage, stored.to_stage) == ("mql", "recycled")
    assert stored.actor_user == rep
    assert stored.actor_system == ""
    assert stored.reason == "no budget this year"
    assert stored.context == {"handoff_id": 7}
    assert stored.actor_display == "rep-a"
    lead.refresh_from_db()
    assert lead.stage_changed_at == stored.occurred_at


@pytest.mark.django_db
def test_system_actor_is_recorded_by_name():
    lead = LeadFactory(stage=Stage.KNOWN)

    record = lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")

    assert record.actor_user is None
    assert record.actor_system == "scoring"


def test_an_actor_is_a_user_or_a_system_never_both():
    with pytest.raises(ValueError):
        Actor()
    with pytest.raises(ValueError):
        Actor(user=object(), system="scoring")  # type: ignore[arg-type]


@pytest.mark.django_db
def test_expected_from_refuses_when_someone_moved_the_lead_first():
    lead = LeadFactory(stage=Stage.MQL)
    stale = Lead.objects.get(pk=lead.pk)
    lead_transition(lead=lead, to_stage=Stage.SQL, actor="rep")

    with pytest.raises(InvalidTransition, match="now SQL, not MQL"):
        lead_transition(lead=stale, to_stage=Stage.RECYCLED, actor="rep", expected_from=stale.stage)
    assert StageTransition.objects.filter(lead=lead).count() == 1


@pytest.mark.django_db
def test_unknown_stage_and_unknown_lead_are_clear_errors():
    lead = LeadFactory(stage=Stage.KNOWN)
    with pytest.raises(InvalidTransition, match="“won” is not a lead stage"):
        lead_transition(lead=lead, to_stage="won", actor="x")
    with pytest.raises(NotFound, match="Lead 999999 does not exist"):
        lead_transition(lead=999999, to_stage=Stage.MQL, actor="x")


@pytest.mark.django_db
def test_the_callers_lead_object_sees_the_new_stage():
    lead = LeadFactory(stage=Stage.KNOWN)
    lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")
    assert lead.stage == Stage.MQL


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_moving_one_lead_at_once_cannot_both_succeed():
    lead = LeadFactory(stage=Stage.KNOWN)
    start = threading.Barrier(2)
    results: list[str] = []

    def worker(to_stage: str) -> None:
        try:
            start.wait()
            lead_transition(
                lead=lead.pk, to_stage=to_stage, actor="worker", expected_from=Stage.KNOWN
            )
            results.append("ok")
        except InvalidTransition:
            results.append("refused")
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=worker, args=(Stage.MQL,)),
        threading.Thread(target=worker, args=(Stage.DISQUALIFIED,)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert connection.vendor == "postgresql"
    assert sorted(results) == ["ok", "refused"]
    assert StageTransition.objects.filter(lead_id=lead.pk).count() == 1
    winner = StageTransition.objects.get(lead_id=lead.pk)
    assert Lead.objects.get(pk=lead.pk).stage == winner.to_stage


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_same_move_from_two_workers_writes_one_transition():
    lead = LeadFactory(stage=Stage.KNOWN)
    start = threading.Barrier(2)
    results: list[str] = []

    def worker() -> None:
        try:
            start.wait()
            lead_transition(lead=lead.pk, to_stage=Stage.MQL, actor="scoring")
            results.append("ok")
        except InvalidTransition:
            results.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == ["ok", "refused"]
    assert StageTransition.objects.filter(lead_id=lead.pk, to_stage=Stage.MQL).count() == 1
