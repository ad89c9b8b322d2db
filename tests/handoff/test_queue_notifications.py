"""Managers hear once of every MQL that lands in the queue because nobody could take it."""

import pytest
from django.core import mail
from django.utils import timezone

from handoff import availability, notifications, tasks, verdicts
from handoff.models import Handoff, QueueNotice, RejectionReason
from leadflow.roles import SALES_MANAGER
from tests.factories import UserFactory
from tests.handoff.helpers import make_mql, make_team, set_profile


@pytest.fixture
def queued(db, settings):
    """Kanto's only rep is away; two managers (a third has no e-mail address); one MQL."""
    settings.PUBLIC_BASE_URL = "https://leadflow.example.co.jp"
    team, (rep,), manager = make_team("Kanto", reps=1, default=True)
    second = UserFactory(username="kanto-manager2", roles=[SALES_MANAGER])
    no_email = UserFactory(username="kanto-manager3", email="", roles=[SALES_MANAGER])
    team.managers.add(second, no_email)
    set_profile(rep, away=True)
    handoff = make_mql(last_name="佐藤", first_name="花子", job_title="情報システム部 部長")
    assert handoff.is_queued
    return handoff, QueueNotice.objects.get(handoff=handoff), [manager, second], rep


def test_a_queued_mql_enqueues_its_notice_after_commit(
    db, monkeypatch, django_capture_on_commit_callbacks
):
    _team, (rep,), _manager = make_team(reps=1, default=True)
    set_profile(rep, away=True)
    sent: list[int] = []
    # Sent through leadflow.transactions.enqueue_on_commit, i.e. apply_async(args=...).
    monkeypatch.setattr(
        tasks.notify_queued_task, "apply_async", lambda args, **options: sent.extend(args)
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        handoff = make_mql()
    assert sent == []  # nothing leaves before the commit

    for callback in callbacks:
        callback()
    assert sent == [QueueNotice.objects.get(handoff=handoff).pk]


def test_an_assigned_mql_makes_no_notice(db, monkeypatch, django_capture_on_commit_callbacks):
    make_team(reps=1, default=True)
    sent: list[int] = []
    # Sent through leadflow.transactions.enqueue_on_commit, i.e. apply_async(args=...).
    monkeypatch.setattr(
        tasks.notify_queued_task, "apply_async", lambda args, **options: sent.extend(args)
    )

    with django_capture_on_commit_callbacks(execute=True):
        handoff = make_mql()

    assert handoff.assigned_to is not None
    assert sent == []
    assert not QueueNotice.objects.exists()


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def test_the_managers_get_one_email_however_often_the_task_runs(queued):
    handoff, notice, managers, _rep = queued

    first = tasks.notify_queued_task(notice.pk)
    second = tasks.notify_queued_task(notice.pk)

    assert first == {"email": True, "slack": False}
    assert second == {"email": False, "slack": False}
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [managers[0].email, managers[1].email]
    company = handoff.lead.company.name
    assert message.subject == f"MQL waiting in the queue of Kanto: 佐藤 花子 ({company})"
    assert message.body == (
        "A new MQL came in and nobody in Kanto could take it (everyone is away or at "
        "capacity). It waits in the team queue.\n"
        "\n"
        f"Lead: 佐藤 花子 <{handoff.lead.email}>\n"
        f"Company: {company}\n"
        "Job title: 情報システム部 部長\n"
        f"MQL at: {_local(handoff.created_at)}\n"
        "\n"
        "Assign it to a rep by hand, or assign the queue from your inbox once a rep has "
        "room. The first-contact clock is already running.\n"
        "\n"
        f"https://leadflow.example.co.jp/inbox/handoffs/{handoff.pk}/\n"
        "https://leadflow.example.co.jp/inbox/\n"
    )
    assert QueueNotice.objects.get(pk=notice.pk).email_sent_at is not None


def test_the_email_is_in_japanese_when_the_site_is(queued, settings):
    handoff, notice, _managers, _rep = queued
    settings.LANGUAGE_CODE = "ja"

    tasks.notify_queued_task(notice.pk)

    (message,) = mail.outbox
    company = handoff.lead.company.name
    assert message.subject == f"キュー待ちのMQL (Kanto): 佐藤 花子 ({company})"
    assert message.body.startswith(
        "新しいMQLが届きましたが、Kanto の担当者は全員不在か上限に達しているため、"
        "誰にも割り当てられませんでした。チームのキューで待っています。\n"
    )
    assert f"リード: 佐藤 花子 <{handoff.lead.email}>\n" in message.body


def test_the_webhook_gets_one_message(queued, webhook):
    handoff, notice, _managers, _rep = queued

    tasks.notify_queued_task(notice.pk)
    tasks.notify_queued_task(notice.pk)

    assert len(webhook.received) == 1
    assert webhook.received[0]["path"] == "/hooks/sales"
    assert webhook.received[0]["body"] == {
        "text": "Nobody in Kanto could take a new MQL; it waits in the queue: 佐藤 花子 — "
        f"https://leadflow.example.co.jp/inbox/handoffs/{handoff.pk}/"
    }
    assert len(mail.outbox) == 1


def test_a_failed_webhook_call_is_released_for_the_retry(queued, webhook):
    _handoff, notice, _managers, _rep = queued
    webhook.fail_next = True

    with pytest.raises(OSError):
        notifications.queue_notice_notify(notice_id=notice.pk)
    assert QueueNotice.objects.get(pk=notice.pk).slack_sent_at is None
    assert len(mail.outbox) == 1  # the e-mail went out before and is not repeated

    assert notifications.queue_notice_notify(notice_id=notice.pk) == {"email": False, "slack": True}
    assert len(webhook.received) == 1
    assert len(mail.outbox) == 1


def test_a_failed_email_is_released_for_the_retry(queued, monkeypatch):
    _handoff, notice, _managers, _rep = queued

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("SMTP down")

    monkeypatch.setattr(notifications, "send_mail", refuse)
    with pytest.raises(OSError):
        tasks.notify_queued_task(notice.pk)
    assert QueueNotice.objects.get(pk=notice.pk).email_sent_at is None

    monkeypatch.undo()
    assert tasks.notify_queued_task(notice.pk) == {"email": True, "slack": False}
    assert len(mail.outbox) == 1


def test_nobody_is_told_when_someone_took_the_mql_meanwhile(queued, webhook):
    handoff, notice, _managers, rep = queued
    availability.rep_set_back(rep=rep, actor=rep)
    assert Handoff.objects.get(pk=handoff.pk).assigned_to == rep

    assert tasks.notify_queued_task(notice.pk) == {"email": False, "slack": False}
    assert mail.outbox == []
    assert webhook.received == []
    assert QueueNotice.objects.get(pk=notice.pk).email_sent_at is None


def test_nobody_is_told_of_a_decided_mql(queued):
    handoff, notice, managers, _rep = queued

    verdicts.handoff_reject(
        handoff=handoff,
        actor=managers[0],
        reason=RejectionReason.objects.get(code="timing"),
        comment="duplicate",
    )

    assert tasks.notify_queued_task(notice.pk) == {"email": False, "slack": False}
    assert mail.outbox == []


def test_an_mql_with_no_team_tells_every_teams_managers(db, settings):
    _kanto, _reps, kanto_manager = make_team("Kanto", reps=1)  # not the default team
    _kansai, _reps2, kansai_manager = make_team("Kansai", reps=1)
    handoff = make_mql(last_name="伊藤", first_name="さくら")
    assert (handoff.team, handoff.assigned_to) == (None, None)

    tasks.notify_queued_task(QueueNotice.objects.get(handoff=handoff).pk)

    (message,) = mail.outbox
    assert message.to == [kanto_manager.email, kansai_manager.email]
    company = handoff.lead.company.name
    assert message.subject == f"MQL waiting without a team: 伊藤 さくら ({company})"
    assert message.body.startswith(
        "A new MQL came in and no routing rule or default team matched it. It waits in the queue.\n"
    )


def test_with_nobody_to_tell_there_is_no_notice_and_no_task(
    db, monkeypatch, django_capture_on_commit_callbacks
):
    _team, (rep,), _none = make_team(reps=1, default=True, manager=False)
    set_profile(rep, away=True)
    sent: list[int] = []
    # Sent through leadflow.transactions.enqueue_on_commit, i.e. apply_async(args=...).
    monkeypatch.setattr(
        tasks.notify_queued_task, "apply_async", lambda args, **options: sent.extend(args)
    )

    with django_capture_on_commit_callbacks(execute=True):
        handoff = make_mql()

    assert handoff.is_queued
    assert sent == []
    assert not QueueNotice.objects.exists()


def test_a_team_without_managers_still_tells_the_webhook(db, webhook):
    _team, (rep,), _none = make_team(reps=1, default=True, manager=False)
    set_profile(rep, away=True)
    handoff = make_mql()

    assert tasks.notify_queued_task(QueueNotice.objects.get(handoff=handoff).pk) == {
        "email": False,
        "slack": True,
    }
    assert mail.outbox == []
    assert len(webhook.received) == 1


def test_a_missing_notice_is_nothing_to_do(db):
    assert tasks.notify_queued_task(987654) == {"email": False, "slack": False}
