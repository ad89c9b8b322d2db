"""The transactional outbox: written with the stage change, claimed once, delivered in
order per lead, retried with backoff, dead-lettered and replayed."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.utils import timezone

from integrations.outbound import services
from integrations.outbound.models import (
    Destination,
    DestinationKind,
    MessageStatus,
    OutboundEvent,
    OutboxMessage,
)
from integrations.outbound.services import (
    events_for_transition,
    outbox_claim_due,
    outbox_deliver_due,
    outbox_replay,
    outbox_retry_now,
    retry_delay,
)
from leadflow.lifecycle import lead_transition
from leadflow.models import Stage
from tests.factories import CompanyFactory, LeadFactory
from tests.integrations.conftest import T0, make_salesforce, make_webhook, stored_score
from tests.integrations.fakes import Reply, WebhookReceiver

E = OutboundEvent


def to_mql(lead, **context):
    stored_score(lead, fit=45, engagement=60)
    return lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring", context=context)


def always_one() -> float:
    return 1.0


# --- which events a move produces -----------------------------------------------------


@pytest.mark.parametrize(
    ("from_stage", "to_stage", "events"),
    [
        (Stage.KNOWN, Stage.MQL, [E.MQL_CREATED]),
        (Stage.RECYCLED, Stage.MQL, [E.MQL_CREATED]),
        (Stage.MQL, Stage.SQL, [E.ACCEPTED]),
        (Stage.MQL, Stage.RECYCLED, [E.REJECTED, E.RECYCLED]),
        (Stage.SQL, Stage.RECYCLED, [E.LOST, E.RECYCLED]),
        (Stage.OPPORTUNITY, Stage.RECYCLED, [E.LOST, E.RECYCLED]),
        (Stage.SQL, Stage.CUSTOMER, [E.WON]),
        (Stage.OPPORTUNITY, Stage.CUSTOMER, [E.WON]),
        (Stage.ADVOCATE, Stage.CUSTOMER, []),
        (Stage.SQL, Stage.OPPORTUNITY, []),
        (Stage.MQL, Stage.DISQUALIFIED, []),
        (Stage.ANONYMOUS, Stage.KNOWN, []),
    ],
)
def test_stage_moves_map_to_outbound_events(from_stage, to_stage, events):
    assert events_for_transition(from_stage=from_stage, to_stage=to_stage) == events


# --- enqueue --------------------------------------------------------------------------


@pytest.mark.django_db
def test_mql_writes_one_message_per_receiving_destination_with_the_mapped_payload(no_kick):
    hook = make_webhook("http://127.0.0.1:9/hook")
    make_webhook("http://127.0.0.1:9/off", slug="off", enabled=False)
    make_webhook("http://127.0.0.1:9/won-only", slug="won-only", events=[E.WON])
    company = CompanyFactory(name="株式会社サンプル", employee_count=320, industry="it")
    lead = LeadFactory(
        email="taro@sample.co.jp", last_name="山田", first_name="太郎", company=company
    )

    transition = to_mql(lead)

    message = OutboxMessage.objects.get()
    assert message.destination == hook
    assert message.event == E.MQL_CREATED
    assert message.status == MessageStatus.PENDING
    assert message.idempotency_key == f"mql_created:{transition.pk}"
    assert message.transition == transition
    assert message.payload["objects"]["lead"] == {
        "id": lead.pk,
        "email": "taro@sample.co.jp",
        "last_name": "山田",
        "first_name": "太郎",
        "company": "株式会社サンプル",
        "company_domain": company.domain,
        "industry": "it",
        "employee_count": 320,
        "prefecture": "東京都",
        "source": "test",
        "stage": "mql",
        "fit_score": 45,
        "engagement_score": 60,
    }
    assert message.payload["scores"] == {"fit": 45, "engagement": 60}


@pytest.mark.django_db
def test_the_message_is_in_the_same_transaction_and_kicks_delivery_on_commit(
    no_kick, django_capture_on_commit_callbacks
):
    make_webhook("http://127.0.0.1:9/hook")
    lead = LeadFactory()

    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        to_mql(lead)
        # Visible inside the transaction that changed the stage, before any commit.
        assert OutboxMessage.objects.filter(lead=lead).count() == 1

    assert len(callbacks) == 1
    # Expires after two sweep intervals: by then beat has delivered the message anyway.
    assert no_kick == [{"expires": 10.0}]


@pytest.mark.django_db
def test_a_rolled_back_stage_change_leaves_no_message(no_kick, django_capture_on_commit_callbacks):
    make_webhook("http://127.0.0.1:9/hook")
    lead = LeadFactory()

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        to_mql(lead)
        raise RuntimeError("the caller failed after the move")

    lead.refresh_from_db()
    assert lead.stage == Stage.KNOWN
    assert OutboxMessage.objects.count() == 0
    assert callbacks == []
    assert no_kick == []


@pytest.mark.django_db
def test_rejection_goes_to_the_sfa_as_rejected_and_to_marketing_as_recycled(no_kick):
    sfa = make_webhook("http://127.0.0.1:9/sfa", slug="sfa")
    ma = make_webhook(
        "http://127.0.0.1:9/ma",
        slug="ma",
        marketing_side=True,
        events=[E.RECYCLED],
    )
    lead = LeadFactory(stage=Stage.MQL)

    transition = lead_transition(
        lead=lead,
        to_stage=Stage.RECYCLED,
        actor="rep-a",
        reason="予算が来期",
        context={"rejection_reason": "no_budget", "rejection_comment": "来年4月に再検討"},
    )

    sent = {(m.destination_id, m.event) for m in OutboxMessage.objects.all()}
    assert sent == {(sfa.pk, E.REJECTED), (ma.pk, E.RECYCLED)}
    recycled = OutboxMessage.objects.get(destination=ma)
    assert recycled.payload["transition"] == {
        "id": transition.pk,
        "from": "mql",
        "to": "recycled",
        "occurred_at": transition.occurred_at.isoformat(),
        "actor": "rep-a",
        "reason": "予算が来期",
        "reason_code": "no_budget",
        "comment": "来年4月に再検討",
    }


@pytest.mark.django_db
def test_lost_deal_goes_to_the_sfa_as_lost_and_to_marketing_as_recycled(no_kick):
    sfa = make_webhook("http://127.0.0.1:9/sfa", slug="sfa", events=[E.LOST, E.WON])
    ma = make_webhook("http://127.0.0.1:9/ma", slug="ma", marketing_side=True, events=[E.RECYCLED])
    lead = LeadFactory(stage=Stage.OPPORTUNITY)

    lead_transition(lead=lead, to_stage=Stage.RECYCLED, actor="sales", reason="competitor won")

    sent = {(m.destination_id, m.event) for m in OutboxMessage.objects.all()}
    assert sent == {(sfa.pk, E.LOST), (ma.pk, E.RECYCLED)}


@pytest.mark.django_db
def test_moves_nobody_subscribed_to_write_nothing(no_kick):
    make_webhook("http://127.0.0.1:9/sfa", slug="sfa", events=[E.WON])
    lead = LeadFactory(stage=Stage.SQL)

    lead_transition(lead=lead, to_stage=Stage.OPPORTUNITY, actor="sales")
    to_mql(LeadFactory())

    assert OutboxMessage.objects.count() == 0
    assert no_kick == []


# --- destination configuration --------------------------------------------------------


@pytest.mark.django_db
def test_a_new_destination_gets_its_kinds_default_mapping():
    destination = make_salesforce("http://127.0.0.1:9")

    lead_fields = destination.field_mapping["Lead"]
    assert list(lead_fields)[:10] == [
        "LastName",
        "FirstName",
        "Company",
        "Email",
        "Phone",
        "Title",
        "Industry",
        "NumberOfEmployees",
        "State",
        "LeadSource",
    ]
    assert lead_fields["LeadFlow_Fit_Score__c"] == "scores.fit"
    assert destination.events == ["mql_created", "accepted", "rejected", "won", "lost"]


@pytest.mark.django_db
def test_only_marketing_side_destinations_may_take_recycled_messages():
    destination = Destination(
        kind=DestinationKind.WEBHOOK,
        slug="x",
        name="x",
        base_url="http://127.0.0.1:9",
        signing_secret="s",
        events=[E.RECYCLED],
    )

    with pytest.raises(ValidationError) as caught:
        destination.full_clean()

    assert caught.value.message_dict["events"] == [
        "Only a marketing-side destination receives “recycled” messages."
    ]
    destination.marketing_side = True
    destination.full_clean()


@pytest.mark.django_db
def test_a_broken_mapping_is_refused_with_the_field_named():
    destination = Destination(
        kind=DestinationKind.WEBHOOK,
        slug="x",
        name="x",
        base_url="http://127.0.0.1:9",
        signing_secret="s",
        field_mapping={"lead": {"email": 42}},
    )

    with pytest.raises(ValidationError) as caught:
        destination.full_clean()

    assert caught.value.message_dict["field_mapping"] == [
        'lead.email: use a path string, {"path": ...} or {"value": ...}.'
    ]


# --- delivery, order, backoff ---------------------------------------------------------


@pytest.mark.django_db
def test_a_lead_s_messages_go_out_in_order_even_when_the_first_needs_a_retry(
    no_kick, clock, receiver
):
    make_webhook(f"{receiver.url}/hook")
    lead = LeadFactory()
    to_mql(lead)
    lead_transition(lead=lead, to_stage=Stage.SQL, actor="rep-a")
    receiver.script.append(Reply(503, {"error": "maintenance"}))

    first = outbox_deliver_due(rng=always_one)
    # The accepted message waits behind the mql_created one instead of overtaking it.
    assert (first.claimed, first.retrying, first.delivered) == (1, 1, 0)
    assert outbox_deliver_due().claimed == 0

    clock.shift(5)
    second = outbox_deliver_due()

    assert (second.claimed, second.delivered) == (2, 2)
    events = [request.json["event"] for request in receiver.requests]
    assert events == ["mql_created", "mql_created", "accepted"]
    statuses = list(OutboxMessage.objects.order_by("id").values_list("status", "attempts"))
    assert statuses == [(MessageStatus.DELIVERED, 2), (MessageStatus.DELIVERED, 1)]


@pytest.mark.django_db
def test_a_dead_message_no_longer_holds_back_the_lead_s_later_ones(no_kick, clock, receiver):
    make_webhook(f"{receiver.url}/hook")
    lead = LeadFactory()
    to_mql(lead)
    lead_transition(lead=lead, to_stage=Stage.SQL, actor="rep-a")
    receiver.script.append(Reply(422, {"error": "unknown field"}))

    stats = outbox_deliver_due()

    assert (stats.dead, stats.delivered) == (1, 1)
    first, second = OutboxMessage.objects.order_by("id")
    assert first.status == MessageStatus.DEAD
    assert first.last_error == "HTTP 422: the receiver did not accept the message."
    assert second.status == MessageStatus.DELIVERED


def test_backoff_doubles_from_the_base_and_stops_at_the_cap(settings):
    settings.OUTBOX_RETRY_BASE_SECONDS = 5
    settings.OUTBOX_RETRY_MAX_SECONDS = 3600

    full = [retry_delay(attempts=n, rng=always_one).total_seconds() for n in range(1, 12)]
    least = [retry_delay(attempts=n, rng=lambda: 0.0).total_seconds() for n in (1, 2, 3)]

    assert full == [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]
    assert least == [2.5, 5, 10]


@pytest.mark.django_db
def test_retries_follow_the_backoff_schedule_then_the_message_dies(no_kick, clock, receiver):
    make_webhook(f"{receiver.url}/hook", max_attempts=4)
    to_mql(LeadFactory())
    receiver.script.extend([Reply(503), Reply(500), Reply(502), Reply(504)])
    message = OutboxMessage.objects.get()
    waits = []

    for _ in range(3):
        outbox_deliver_due(rng=always_one)
        message.refresh_from_db()
        assert message.status == MessageStatus.PENDING
        waits.append((message.next_attempt_at - dt.datetime.now(tz=dt.UTC)).total_seconds())
        # Not due yet: nothing is claimed before the wait is over.
        clock.shift(waits[-1] - 1)
        assert outbox_deliver_due().claimed == 0
        clock.shift(1)
    outbox_deliver_due(rng=always_one)

    message.refresh_from_db()
    assert waits == [5, 10, 20]
    assert message.status == MessageStatus.DEAD
    assert message.attempts == 4
    assert message.last_error == "Gave up after 4 attempts. Last error: HTTP 504: " + (
        "the receiver did not accept the message."
    )
    assert len(receiver.requests) == 4


@pytest.mark.django_db
def test_retry_after_from_the_vendor_is_honoured(no_kick, clock, receiver):
    make_webhook(f"{receiver.url}/hook")
    to_mql(LeadFactory())
    receiver.script.append(Reply(429, {"error": "slow down"}, {"Retry-After": "120"}))

    outbox_deliver_due(rng=always_one)

    message = OutboxMessage.objects.get()
    assert message.status == MessageStatus.PENDING
    assert message.next_attempt_at == T0 + dt.timedelta(seconds=120)
    assert message.info["retry_after"] == 120.0


@pytest.mark.django_db
def test_a_refused_connection_is_retried(no_kick, clock):
    server = WebhookReceiver().start()
    url = server.url
    server.stop()
    make_webhook(f"{url}/hook")
    to_mql(LeadFactory())

    stats = outbox_deliver_due(rng=always_one)

    message = OutboxMessage.objects.get()
    assert (stats.retrying, message.status) == (1, MessageStatus.PENDING)
    assert message.last_error.startswith("network error: ConnectError")


@pytest.mark.django_db
def test_a_disabled_destination_keeps_its_messages_until_enabled_again(no_kick, clock, receiver):
    hook = make_webhook(f"{receiver.url}/hook")
    to_mql(LeadFactory())
    Destination.objects.filter(pk=hook.pk).update(enabled=False)

    assert outbox_deliver_due().claimed == 0

    Destination.objects.filter(pk=hook.pk).update(enabled=True)
    assert outbox_deliver_due().delivered == 1


# --- leases ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_killed_worker_s_message_is_claimed_again_after_its_lease(no_kick, clock, receiver):
    make_webhook(f"{receiver.url}/hook", timeout_seconds=2.0)
    to_mql(LeadFactory())
    [claimed] = outbox_claim_due(limit=10)  # ... and then the worker dies
    assert claimed.status == MessageStatus.IN_FLIGHT
    assert claimed.lease_expires_at == T0 + dt.timedelta(seconds=2 * 8 + 30)

    assert outbox_deliver_due().claimed == 0
    clock.shift(46.5)
    stats = outbox_deliver_due()

    message = OutboxMessage.objects.get()
    assert (stats.delivered, message.status, message.attempts) == (1, MessageStatus.DELIVERED, 2)


@pytest.mark.django_db
def test_a_slow_worker_whose_lease_was_taken_over_does_not_overwrite_the_result(
    no_kick, clock, receiver
):
    make_webhook(f"{receiver.url}/hook", timeout_seconds=1.0)
    to_mql(LeadFactory())
    [slow] = outbox_claim_due(limit=10)
    clock.shift(60)
    [fast] = outbox_claim_due(limit=10)
    services._record_failure(
        fast,
        services.DeliveryError("permanent", permanent=True),
        dt.datetime.now(tz=dt.UTC),
        always_one,
    )

    kept = services._record_success(
        slow, services.DeliveryResult(200, "late ok"), dt.datetime.now(tz=dt.UTC)
    )

    message = OutboxMessage.objects.get()
    assert kept is False
    assert (message.status, message.last_error) == (MessageStatus.DEAD, "permanent")


# --- dead letter and replay -----------------------------------------------------------


@pytest.mark.django_db
def test_dead_letter_then_replay_after_the_mapping_is_fixed(no_kick, clock, salesforce):
    destination = make_salesforce(salesforce.url)
    lead = LeadFactory(company=None, last_name="佐藤")
    to_mql(lead)

    outbox_deliver_due()

    message = OutboxMessage.objects.get()
    assert message.status == MessageStatus.DEAD
    assert message.response_status == 400
    assert message.last_error == (
        "HTTP 400: Salesforce did not accept the lead: REQUIRED_FIELD_MISSING: "
        "Required fields are missing: [Company] (fields: Company)"
    )
    assert '"errorCode": "REQUIRED_FIELD_MISSING"' in message.response_body

    mapping = destination.field_mapping
    mapping["Lead"]["Company"] = {"path": "company.name", "default": "[未記入]"}
    Destination.objects.filter(pk=destination.pk).update(field_mapping=mapping)
    assert outbox_replay(message_ids=[message.pk], actor="admin") == 1
    outbox_deliver_due()

    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert message.payload["objects"]["Lead"]["Company"] == "[未記入]"
    assert message.info["replays"][0]["by"] == "admin"
    assert message.info["replays"][0]["error"].startswith("HTTP 400")
    assert salesforce.leads[str(lead.pk)]["fields"]["Company"] == "[未記入]"


@pytest.mark.django_db
def test_replay_touches_only_dead_messages(no_kick, clock, receiver):
    make_webhook(f"{receiver.url}/hook")
    to_mql(LeadFactory())
    message = OutboxMessage.objects.get()

    assert outbox_replay(message_ids=[message.pk], actor="admin") == 0
    message.refresh_from_db()
    assert message.status == MessageStatus.PENDING
    assert message.info == {}


@pytest.mark.django_db
def test_retry_now_brings_a_waiting_message_forward(no_kick, clock, receiver):
    make_webhook(f"{receiver.url}/hook")
    to_mql(LeadFactory())
    receiver.script.append(Reply(503))
    outbox_deliver_due(rng=always_one)

    assert (
        outbox_retry_now(message_ids=list(OutboxMessage.objects.values_list("id", flat=True))) == 1
    )
    assert outbox_deliver_due().delivered == 1


# --- no transaction while calling out; two workers ----------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_vendor_call_happens_with_no_transaction_open(no_kick, monkeypatch):
    make_webhook("http://127.0.0.1:9/hook")
    to_mql(LeadFactory())
    seen: list[bool] = []

    def spy(*, destination, message, client):
        seen.append(connection.in_atomic_block)
        return services.DeliveryResult(200, "ok")

    monkeypatch.setitem(
        __import__("integrations.outbound.connectors", fromlist=["CONNECTORS"]).CONNECTORS,
        "webhook",
        spy,
    )

    assert outbox_deliver_due().delivered == 1
    assert seen == [False]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_at_once_never_take_the_same_message(no_kick):
    make_webhook("http://127.0.0.1:9/hook")
    for lead in LeadFactory.create_batch(40):
        to_mql(lead)
    start = threading.Barrier(2)
    claims: list[list[int]] = [[], []]

    def worker(slot: int) -> None:
        try:
            start.wait()
            while True:
                batch = outbox_claim_due(limit=3)
                if not batch:
                    break
                claims[slot].extend(message.pk for message in batch)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert connection.vendor == "postgresql"
    assert set(claims[0]).isdisjoint(claims[1])
    assert sorted(claims[0] + claims[1]) == sorted(
        OutboxMessage.objects.values_list("id", flat=True)
    )
    assert claims[0] and claims[1]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_delivering_at_once_send_each_message_once_in_order(no_kick):
    with WebhookReceiver() as receiver:
        make_webhook(f"{receiver.url}/hook")
        leads = LeadFactory.create_batch(30)
        for lead in leads:
            to_mql(lead)
            lead_transition(lead=lead, to_stage=Stage.SQL, actor="rep")
        start = threading.Barrier(2)

        def worker() -> None:
            try:
                start.wait()
                outbox_deliver_due(batch_size=4, max_batches=100)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        keys = [request.json["idempotency_key"] for request in receiver.requests]
        assert len(keys) == 60 == len(set(keys))
        per_lead: dict[int, list[str]] = {}
        for request in receiver.requests:
            per_lead.setdefault(request.json["lead"]["id"], []).append(request.json["event"])
        assert all(events == ["mql_created", "accepted"] for events in per_lead.values())
        assert OutboxMessage.objects.exclude(status=MessageStatus.DELIVERED).count() == 0


@pytest.mark.django_db
def test_a_rep_rejecting_in_the_inbox_sends_reason_code_and_comment_to_marketing(no_kick):
    from handoff.models import Handoff, RejectionReason, Team, TeamMembership
    from handoff.verdicts import handoff_reject
    from leadflow.lifecycle import lead_mark_lost
    from tests.factories import UserFactory

    ma = make_webhook("http://127.0.0.1:9/ma", slug="ma", marketing_side=True, events=[E.RECYCLED])
    rep = UserFactory(username="rep-z", roles=["Sales rep"])
    team = Team.objects.create(name="T", is_default=True)
    TeamMembership.objects.create(team=team, rep=rep)
    lead = LeadFactory()
    lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")
    handoff = Handoff.objects.get(lead=lead)

    handoff_reject(
        handoff=handoff,
        actor=rep,
        reason=RejectionReason.objects.get(code="timing"),
        comment="来年度の予算で再検討",
    )

    message = OutboxMessage.objects.get(destination=ma)
    assert message.payload["transition"]["reason_code"] == "timing"
    assert message.payload["transition"]["comment"] == "来年度の予算で再検討"

    sql_lead = LeadFactory(stage=Stage.SQL)
    lead_mark_lost(lead=sql_lead, actor=rep, reason="価格で競合に負けた")
    lost = OutboxMessage.objects.filter(destination=ma).latest("pk")
    assert (lost.payload["transition"]["reason_code"], lost.payload["transition"]["comment"]) == (
        "lost",
        "価格で競合に負けた",
    )


@pytest.mark.django_db
def test_an_mql_made_by_scoring_carries_its_real_scores(no_kick):
    from scoring.models import LeadScore
    from scoring.services import lead_score_changes
    from tests.factories import EngagementEventFactory

    sfa = make_webhook("http://127.0.0.1:9/sfa", slug="sfa")
    company = CompanyFactory(employee_count=800, industry="manufacturing", prefecture="東京都")
    lead = LeadFactory(company=company, role="executive", job_title="代表取締役")
    events = EngagementEventFactory.create_batch(
        4, lead=lead, kind="pricing_page_view", occurred_at=timezone.now()
    )

    lead_score_changes(lead=lead, events=events, attributes_changed=True)

    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    score = LeadScore.objects.get(lead=lead)
    message = OutboxMessage.objects.get(destination=sfa, event=E.MQL_CREATED)
    assert message.payload["scores"] == {"fit": score.fit, "engagement": score.engagement}
    assert score.fit >= 30 and score.engagement >= 50
