"""A bulk move's assignment notifications go out a chunk per task (handoff.bulk): one
rep whose address the mail server refuses holds up, and is retried, alone."""

from __future__ import annotations

import smtplib

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend

from handoff import tasks
from handoff.models import Assignment
from tests.handoff.helpers import make_mql, make_team

pytestmark = pytest.mark.django_db

BAD = "bad-address@example.jp"


class RefusingBackend(EmailBackend):
    """The locmem backend, with a server that refuses one address, as SMTP does."""

    def send_messages(self, messages):
        for message in messages:
            if BAD in message.to:
                raise smtplib.SMTPRecipientsRefused({BAD: (550, b"5.1.1 User unknown")})
        return super().send_messages(messages)


@pytest.fixture
def chunk(settings) -> list[Assignment]:
    """Three assignments, one per rep; the second rep's address is refused."""
    settings.EMAIL_BACKEND = "tests.handoff.test_bulk_notifications.RefusingBackend"
    _team, reps, _boss = make_team(reps=3, default=True)
    reps[1].email = BAD
    reps[1].save(update_fields=["email"])
    assignments = [Assignment.objects.get(handoff=make_mql()) for _ in range(3)]
    assert sorted(a.rep_id for a in assignments) == sorted(rep.pk for rep in reps)
    return sorted(assignments, key=lambda a: a.pk)


def _retries(monkeypatch) -> list[dict]:
    calls: list[dict] = []

    def retry(**options):
        calls.append(options)
        return Retry("retry", options.get("exc"))

    monkeypatch.setattr(tasks.notify_assignments_task, "retry", retry)
    return calls


def test_a_refused_address_retries_only_its_assignment_and_the_others_are_sent(chunk, monkeypatch):
    retries = _retries(monkeypatch)
    refused = next(a for a in chunk if a.rep.email == BAD)
    others = [a for a in chunk if a.rep.email != BAD]

    with pytest.raises(Retry):
        tasks.notify_assignments_task([a.pk for a in chunk])

    assert sorted(m.to[0] for m in mail.outbox) == sorted(a.rep.email for a in others)
    assert len(retries) == 1
    assert retries[0]["args"] == ([refused.pk],)
    assert isinstance(retries[0]["exc"], smtplib.SMTPRecipientsRefused)
    assert 0 <= retries[0]["countdown"] <= 1  # the first retry's backoff (retries=0)
    sent = dict(
        Assignment.objects.filter(pk__in=[a.pk for a in chunk]).values_list("pk", "email_sent_at")
    )
    assert sent[refused.pk] is None  # released for the retry
    assert all(sent[a.pk] is not None for a in others)


def test_the_retry_of_the_failed_ids_sends_nothing_twice(chunk, monkeypatch, settings):
    retries = _retries(monkeypatch)
    refused = next(a for a in chunk if a.rep.email == BAD)
    with pytest.raises(Retry):
        tasks.notify_assignments_task([a.pk for a in chunk])
    assert len(mail.outbox) == 2

    # The address was fixed before the retry ran; the retry carries only the failed id.
    type(refused.rep).objects.filter(pk=refused.rep_id).update(email="fixed@example.jp")
    assert tasks.notify_assignments_task(*retries[0]["args"]) == 1
    # A redelivery of the original chunk (acks late) sends nothing again either.
    assert tasks.notify_assignments_task([a.pk for a in chunk]) == 3

    assert len(mail.outbox) == 3
    assert mail.outbox[-1].to == ["fixed@example.jp"]
    assert len(retries) == 1


def test_a_permanently_refused_address_is_retried_a_bounded_number_of_times(chunk, monkeypatch):
    refused = next(a for a in chunk if a.rep.email == BAD)
    attempts: list[list[int]] = []
    original = tasks.notifications.assignments_notify

    def counting(*, assignment_ids):
        attempts.append(list(assignment_ids))
        return original(assignment_ids=assignment_ids)

    monkeypatch.setattr(tasks.notifications, "assignments_notify", counting)

    # apply(): the retries run here, one after the other (their countdowns skipped).
    result = tasks.notify_assignments_task.apply(args=([a.pk for a in chunk],))

    assert isinstance(result.result, smtplib.SMTPRecipientsRefused)
    assert attempts == [[a.pk for a in chunk]] + [[refused.pk]] * 6
    assert len(mail.outbox) == 2  # the two good addresses, once each
