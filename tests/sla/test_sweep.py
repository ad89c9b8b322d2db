"""The sweep marks each breach once, reminds before the deadline, escalates to the
manager (e-mail and webhook, once each) and reassigns when the policy says so."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.db import connection, connections, transaction

from handoff import verdicts as handoff_verdicts
from handoff.models import Assignment, Handoff
from sla import services, tasks
from sla.models import SlaTimer, TimerPolicy
from tests.sla.conftest import at, mql


def _record_first_arg(calls: list):
    def apply_async(args=(), kwargs=None, **options):
        calls.append(args[0])

    return apply_async


@pytest.fixture
def enqueued(monkeypatch):
    """What the sweep and the escalation hand to Celery, instead of a broker."""
    calls: dict[str, list] = {"escalate": [], "remind": [], "notify": [], "sweep": []}
    # At apply_async, where both delay() and leadflow.transactions.enqueue_on_commit land.
    for task, name in [
        (tasks.escalate_timers_task, "escalate"),
        (tasks.remind_timers_task, "remind"),
        (tasks.escalation_notify_task, "notify"),
    ]:
        monkeypatch.setattr(task, "apply_async", _record_first_arg(calls[name]))
    monkeypatch.setattr(tasks.sweep_task, "delay", lambda: calls["sweep"].append(True))
    return calls


@pytest.fixture
def late(kanto, time_machine, settings):
    """alice's MQL of Wednesday 10:00, looked at on Thursday 10:01: first contact is late."""
    settings.PUBLIC_BASE_URL = "https://leadflow.example.co.jp"
    time_machine.move_to(at(11, 18, 10), tick=False)
    handoff = mql(kanto[1][0], at(11, 18, 10))
    time_machine.move_to(at(11, 19, 10, 1), tick=False)
    return handoff


def _timer(handoff, kind="first_contact"):
    return SlaTimer.objects.get(handoff=handoff, kind=kind)


def test_the_sweep_marks_a_breach_once_and_escalates_after_commit(
    late, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = services.timers_sweep()
    with django_capture_on_commit_callbacks(execute=True):
        second = services.timers_sweep()

    timer = _timer(late)
    assert first.breached == [timer.pk]
    assert (timer.status, timer.breached_at, timer.escalated_at) == (
        "breached",
        at(11, 19, 10, 1),
        None,
    )
    assert second.breached == []
    assert enqueued["escalate"] == [[timer.pk]]
    assert _timer(late, "verdict").status == "pending"


def test_nothing_is_due_before_the_deadline(kanto, time_machine, enqueued):
    time_machine.move_to(at(11, 18, 10), tick=False)
    handoff = mql(kanto[1][0], at(11, 18, 10))
    time_machine.move_to(at(11, 19, 9, 59), tick=False)

    result = services.timers_sweep()

    assert result.breached == []
    assert _timer(handoff).status == "pending"


def test_batches_are_bounded_and_the_sweep_asks_to_run_again(kanto, time_machine, enqueued):
    time_machine.move_to(at(11, 18, 10), tick=False)
    handoffs = [mql(kanto[1][0], at(11, 18, 10)) for _ in range(3)]
    time_machine.move_to(at(11, 19, 11), tick=False)

    first = services.timers_sweep(batch_size=2)
    second = services.timers_sweep(batch_size=2)

    assert (len(first.breached), first.more) == (2, True)
    assert (len(second.breached), second.more) == (1, False)
    assert sorted(first.breached + second.breached) == sorted(_timer(h).pk for h in handoffs)


def test_the_sweep_task_reenqueues_itself_while_batches_are_full(
    kanto, time_machine, enqueued, settings
):
    settings.SLA_SWEEP_BATCH_SIZE = 1
    time_machine.move_to(at(11, 18, 10), tick=False)
    mql(kanto[1][0], at(11, 18, 10))
    mql(kanto[1][0], at(11, 18, 10))
    time_machine.move_to(at(11, 19, 11), tick=False)

    assert tasks.sweep_task() == {
        "breached": 1,
        "reminded": 0,
        "retried": 0,
        "passed": 0,
        "queued": 0,
        "released": 0,
    }
    assert enqueued["sweep"] == [True]


def test_a_reminder_goes_to_the_rep_once_at_75_percent(kanto, time_machine, enqueued, settings):
    settings.PUBLIC_BASE_URL = "https://leadflow.example.co.jp"
    time_machine.move_to(at(11, 18, 10), tick=False)
    alice = kanto[1][0]
    handoff = mql(alice, at(11, 18, 10))
    time_machine.move_to(at(11, 19, 3, 59), tick=False)
    assert services.timers_sweep().reminded == []

    time_machine.move_to(at(11, 19, 4), tick=False)
    result = services.timers_sweep()
    assert result.reminded == [_timer(handoff).pk]
    assert services.timers_sweep().reminded == []

    assert tasks.remind_timers_task(result.reminded) == 1
    assert tasks.remind_timers_task(result.reminded) == 0
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [alice.email]
    assert mail.outbox[0].subject.startswith("Reminder: First contact for 山田")
    assert f"/inbox/handoffs/{handoff.pk}/" in mail.outbox[0].body


def test_escalation_mails_the_manager_once(late, enqueued, django_capture_on_commit_callbacks):
    timer_id = services.timers_sweep().breached[0]
    manager = late.team.managers.get()

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.escalate_timers_task([timer_id]) == 1
        assert tasks.escalate_timers_task([timer_id]) == 0  # claimed already
    assert enqueued["notify"] == [timer_id]
    assert tasks.escalation_notify_task(timer_id) == {"email": True, "webhook": False}
    assert tasks.escalation_notify_task(timer_id) == {"email": False, "webhook": False}

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [manager.email]
    assert message.subject == f"SLA breached: First contact for {late.lead.full_name}"
    assert "Rep: kanto-rep1" in message.body
    assert f"https://leadflow.example.co.jp/inbox/handoffs/{late.pk}/" in message.body
    assert Handoff.objects.get(pk=late.pk).assigned_to == late.assigned_to  # no reassign


def test_escalation_reassigns_through_the_routing_when_the_policy_says_so(late, enqueued):
    TimerPolicy.objects.filter(kind="first_contact").update(reassign_on_breach=True)
    _team, (alice, bob), _manager = (late.team, list(late.team.members.order_by("username")), None)
    timer_id = services.timers_sweep().breached[0]

    services.timer_escalate(timer_id=timer_id)

    handoff = Handoff.objects.get(pk=late.pk)
    assert handoff.assigned_to == bob
    last = Assignment.objects.filter(handoff=handoff).latest("id")
    assert (last.rep, last.previous_rep, last.via, last.by) == (bob, alice, "routing", None)
    assert last.reason == "SLA breached: First contact was due 2026-11-19 10:00."
    # The breach stays alice's; the verdict clock, still running, is now bob's.
    assert _timer(handoff).rep == alice
    assert _timer(handoff, "verdict").rep == bob
    services.escalation_notify(timer_id=timer_id)
    assert "Reassigned by the routing to kanto-rep2." in mail.outbox[0].body

    # A second escalation of the same breach changes nothing.
    assert services.timer_escalate(timer_id=timer_id) is False
    assert Assignment.objects.filter(handoff=handoff).count() == 2


def test_escalation_leaves_the_handoff_when_nobody_else_can_take_it(
    late, enqueued, django_capture_on_commit_callbacks
):
    from tests.handoff.helpers import set_profile

    TimerPolicy.objects.filter(kind="first_contact").update(reassign_on_breach=True)
    bob = late.team.members.get(username="kanto-rep2")
    set_profile(bob, away=True)
    timer_id = services.timers_sweep().breached[0]

    with django_capture_on_commit_callbacks(execute=True):
        assert services.timer_escalate(timer_id=timer_id) is True

    assert Handoff.objects.get(pk=late.pk).assigned_to == late.assigned_to
    assert enqueued["notify"] == [timer_id]


def test_a_decided_handoff_is_not_rerouted(late, enqueued):
    TimerPolicy.objects.filter(kind="first_contact").update(reassign_on_breach=True)
    timer_id = services.timers_sweep().breached[0]
    handoff_verdicts.handoff_accept(
        handoff=late, actor=late.assigned_to, bant={"budget": True, "need": True}
    )

    # Met late by the verdict: nothing left to escalate.
    assert services.timer_escalate(timer_id=timer_id) is False
    assert Assignment.objects.filter(handoff=late).count() == 1


def test_an_escalation_that_never_ran_is_enqueued_again(late, enqueued, time_machine):
    timer_id = services.timers_sweep().breached[0]
    enqueued["escalate"].clear()
    time_machine.move_to(at(11, 19, 10, 5), tick=False)
    assert services.timers_sweep().retried == []

    time_machine.move_to(at(11, 19, 10, 7), tick=False)
    assert services.timers_sweep().retried == [timer_id]
    assert enqueued["escalate"] == [[timer_id]]


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict]

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append({"path": self.path, "body": body})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_webhook_hears_of_a_breach_once(late, enqueued, settings):
    handler = type("Handler", (_Recorder,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SLA_SLACK_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hooks/sla"
    try:
        timer_id = services.timers_sweep().breached[0]
        services.timer_escalate(timer_id=timer_id)
        assert services.escalation_notify(timer_id=timer_id) == {"email": True, "webhook": True}
        assert services.escalation_notify(timer_id=timer_id) == {
            "email": False,
            "webhook": False,
        }
    finally:
        server.shutdown()
        server.server_close()

    assert len(handler.received) == 1
    assert handler.received[0]["path"] == "/hooks/sla"
    assert handler.received[0]["body"]["text"].startswith(
        f"SLA breached: First contact for {late.lead.full_name} (rep: kanto-rep1)"
    )


def test_a_failed_mail_is_released_for_the_retry(late, enqueued, monkeypatch):
    timer_id = services.timers_sweep().breached[0]
    services.timer_escalate(timer_id=timer_id)

    def broken(*args, **kwargs):
        raise OSError("SMTP down")

    monkeypatch.setattr(services, "send_mail", broken)
    with pytest.raises(OSError):
        services.escalation_notify(timer_id=timer_id)
    assert SlaTimer.objects.get(pk=timer_id).escalation_email_sent_at is None

    monkeypatch.undo()
    assert services.escalation_notify(timer_id=timer_id)["email"] is True


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_split_the_work_and_mark_nothing_twice(
    seeded, kanto, time_machine, enqueued
):
    time_machine.move_to(at(11, 18, 10), tick=True)
    handoffs = [mql(kanto[1][i % 2], at(11, 18, 10)) for i in range(24)]
    start = threading.Barrier(2)
    results: list[list[int]] = [[], []]
    errors: list[Exception] = []

    def sweeper(slot: int) -> None:
        try:
            start.wait()
            while True:
                result = services.timers_sweep(now=at(11, 19, 11), batch_size=5)
                results[slot].extend(result.breached)
                if not result.breached:
                    break
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweeper, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert connection.vendor == "postgresql"
    assert errors == []
    marked = results[0] + results[1]
    assert len(marked) == len(set(marked)) == 24
    assert set(marked) == {_timer(h).pk for h in handoffs}
    assert sum(len(ids) for ids in enqueued["escalate"]) == 24


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_sweep_skips_rows_another_sweep_holds_instead_of_waiting(
    seeded, kanto, time_machine, enqueued
):
    time_machine.move_to(at(11, 18, 10), tick=True)
    handoffs = [mql(kanto[1][0], at(11, 18, 10)) for _ in range(4)]
    held = sorted(_timer(h).pk for h in handoffs[:2])
    locked = threading.Event()
    release = threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic():
                list(SlaTimer.objects.select_for_update().filter(pk__in=held))
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=holder)
    thread.start()
    locked.wait(10)
    try:
        result = services.timers_sweep(now=at(11, 19, 11))
    finally:
        release.set()
        thread.join()

    assert sorted(result.breached) == sorted(_timer(h).pk for h in handoffs[2:])
    assert set(SlaTimer.objects.filter(pk__in=held).values_list("status", flat=True)) == {"pending"}
    assert sorted(services.timers_sweep(now=at(11, 19, 11)).breached) == held
