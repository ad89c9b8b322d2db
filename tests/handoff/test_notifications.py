import pytest
from django.core import mail

from handoff import notifications, routing, tasks
from handoff.models import Assignment
from tests.handoff.helpers import make_mql, make_team, set_profile


@pytest.fixture
def assigned(db, settings):
    settings.PUBLIC_BASE_URL = "https://leadflow.example.co.jp"
    make_team(reps=1, default=True)
    handoff = make_mql(last_name="佐藤", first_name="花子")
    return handoff, Assignment.objects.get(handoff=handoff)


def test_assignment_enqueues_the_notification_after_commit(
    db, monkeypatch, django_capture_on_commit_callbacks
):
    make_team(reps=1, default=True)
    sent: list[int] = []
    # Sent through leadflow.transactions.enqueue_on_commit, i.e. apply_async(args=...).
    monkeypatch.setattr(
        tasks.notify_assignment_task, "apply_async", lambda args, **options: sent.extend(args)
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        handoff = make_mql()
    assert sent == []  # nothing leaves before the commit

    for callback in callbacks:
        callback()
    assert sent == [Assignment.objects.get(handoff=handoff).pk]


def test_the_rep_gets_one_email_however_often_the_task_runs(assigned):
    handoff, assignment = assigned

    first = tasks.notify_assignment_task(assignment.pk)
    second = tasks.notify_assignment_task(assignment.pk)

    assert first == {"email": True, "slack": False}
    assert second == {"email": False, "slack": False}
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [handoff.assigned_to.email]
    assert message.subject == f"New MQL for you: 佐藤 花子 ({handoff.lead.company.name})"
    assert f"https://leadflow.example.co.jp/inbox/handoffs/{handoff.pk}/" in message.body
    assert handoff.lead.email in message.body
    assert Assignment.objects.get(pk=assignment.pk).email_sent_at is not None


def test_the_slack_webhook_gets_one_message(assigned, webhook):
    handoff, assignment = assigned

    tasks.notify_assignment_task(assignment.pk)
    tasks.notify_assignment_task(assignment.pk)

    assert len(webhook.received) == 1
    assert webhook.received[0]["path"] == "/hooks/sales"
    text = webhook.received[0]["body"]["text"]
    assert text == (
        f"{handoff.assigned_to} has a new MQL: 佐藤 花子 — "
        f"https://leadflow.example.co.jp/inbox/handoffs/{handoff.pk}/"
    )
    assert len(mail.outbox) == 1


def test_a_failed_webhook_call_is_released_for_the_retry(assigned, webhook):
    _handoff, assignment = assigned
    webhook.fail_next = True

    with pytest.raises(OSError):
        notifications.assignment_notify(assignment_id=assignment.pk)
    assert Assignment.objects.get(pk=assignment.pk).slack_sent_at is None
    assert len(mail.outbox) == 1  # the e-mail went out before and is not repeated

    assert notifications.assignment_notify(assignment_id=assignment.pk) == {
        "email": False,
        "slack": True,
    }
    assert len(webhook.received) == 1
    assert len(mail.outbox) == 1


def test_a_stale_assignment_notifies_nobody(assigned):
    handoff, assignment = assigned
    team = handoff.team
    manager = team.managers.get()
    newcomer = make_team("Other", reps=1, manager=False)[1][0]
    team.memberships.create(rep=newcomer)
    routing.handoff_reassign(handoff=handoff, to_rep=newcomer, actor=manager, reason="holiday")

    assert tasks.notify_assignment_task(assignment.pk) == {"email": False, "slack": False}
    assert mail.outbox == []


def test_a_queued_handoff_notifies_when_it_is_assigned(db):
    team, reps, _ = make_team(reps=1, default=True)
    set_profile(reps[0], away=True)
    handoff = make_mql()
    assert not Assignment.objects.exists()

    set_profile(reps[0], away=False)
    routing.handoff_assign_from_queue(team=team)
    tasks.notify_assignment_task(Assignment.objects.get(handoff=handoff).pk)

    assert [m.to for m in mail.outbox] == [[reps[0].email]]
