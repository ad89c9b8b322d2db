import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from handoff.activities import activity_log
from handoff.models import Activity, Handoff, RejectionReason, Team, TeamMembership
from handoff.verdicts import handoff_reject
from integrations.outbound.models import OutboxMessage
from leadflow.duplicates import duplicates_detect
from leadflow.errors import DomainError
from leadflow.lifecycle import lead_transition
from leadflow.merge import lead_merge, merge_survivor
from leadflow.models import (
    DuplicateCandidate,
    EngagementEvent,
    Lead,
    LeadExternalId,
    LeadMerge,
    Stage,
    StageTransition,
)
from tests.factories import EngagementEventFactory, LeadFactory, UserFactory


@pytest.fixture
def team_with_rep():
    team = Team.objects.create(name="T", is_default=True)
    rep = UserFactory(username="rep-m", roles=["Sales rep"])
    TeamMembership.objects.create(team=team, rep=rep)
    return team, rep


def counts(lead_id):
    return {
        "events": EngagementEvent.objects.filter(lead_id=lead_id).count(),
        "transitions": StageTransition.objects.filter(lead_id=lead_id).count(),
        "external_ids": LeadExternalId.objects.filter(lead_id=lead_id).count(),
        "handoffs": Handoff.objects.filter(lead_id=lead_id).count(),
        "outbox": OutboxMessage.objects.filter(lead_id=lead_id).count(),
    }


@pytest.mark.django_db
def test_merge_moves_every_related_row_and_keeps_an_audit_record(team_with_rep):
    from tests.integrations.conftest import make_webhook

    make_webhook("http://127.0.0.1:9/x", slug="sfa")
    _team, rep = team_with_rep
    keep = LeadFactory(email="taro@new.example.jp", phone="", department="")
    other = LeadFactory(
        email="taro@old.example.jp",
        phone="03-1234-5678",
        department="情報システム部",
        attributes={"budget": "500万円"},
    )
    EngagementEventFactory.create_batch(3, lead=keep)
    EngagementEventFactory.create_batch(4, lead=other, source="s", external_id=None or "")
    LeadExternalId.objects.create(lead=other, system="mautic", external_id="9")
    lead_transition(lead=other, to_stage=Stage.MQL, actor="scoring")
    handoff = Handoff.objects.get(lead=other)
    activity_log(handoff=handoff, actor=rep, kind="call", outcome="no_answer")
    handoff_reject(
        handoff=handoff,
        actor=rep,
        comment="重複",
        reason=RejectionReason.objects.get(code="duplicate"),
    )
    lead_transition(lead=keep, to_stage=Stage.MQL, actor="scoring")
    before_keep, before_other = counts(keep.pk), counts(other.pk)

    record = lead_merge(keep=keep, merge=other, actor=rep)

    after = counts(keep.pk)
    assert after == {key: before_keep[key] + before_other[key] for key in after}
    assert before_other == {
        "events": 4,
        "transitions": 2,
        "external_ids": 1,
        "handoffs": 1,
        "outbox": before_other["outbox"],
    }
    assert counts(other.pk) == {key: 0 for key in after}
    assert not Lead.objects.filter(pk=other.pk).exists()
    assert Activity.objects.get().handoff.lead_id == keep.pk
    keep.refresh_from_db()
    assert keep.email == "taro@new.example.jp"
    assert keep.phone == "03-1234-5678"  # filled from the merged lead
    assert keep.department == "情報システム部"
    assert keep.attributes["budget"] == "500万円"
    assert record.merged_email == "taro@old.example.jp"
    assert record.snapshot["phone"] == "03-1234-5678"
    assert record.actor_user == rep
    assert record.moved["leadflow.EngagementEvent"] == 4
    assert LeadMerge.objects.get().kept == keep


@pytest.mark.django_db
def test_a_lead_under_an_open_handoff_keeps_it_and_absorbs_the_other(team_with_rep):
    mql = LeadFactory(phone="090-1111-2222")
    lead_transition(lead=mql, to_stage=Stage.MQL, actor="scoring")
    known = LeadFactory(phone="09011112222")
    EngagementEventFactory.create_batch(2, lead=known)
    duplicates_detect()
    candidate = DuplicateCandidate.objects.get()

    keep, other = merge_survivor(candidate.lead_a, candidate.lead_b)
    lead_merge(keep=keep, merge=other, actor="marketing-review")

    assert keep.pk == mql.pk
    handoff = Handoff.objects.get()
    assert (handoff.lead_id, handoff.status) == (mql.pk, "open")
    assert EngagementEvent.objects.filter(lead=mql).count() == 2
    assert not DuplicateCandidate.objects.exists()
    assert LeadMerge.objects.get().merged_lead_id == known.pk


@pytest.mark.django_db
def test_two_open_handoffs_are_refused_and_nothing_changes(team_with_rep):
    a = LeadFactory()
    b = LeadFactory()
    EngagementEventFactory(lead=b)
    lead_transition(lead=a, to_stage=Stage.MQL, actor="scoring")
    lead_transition(lead=b, to_stage=Stage.MQL, actor="scoring")

    with pytest.raises(DomainError, match=r"has an open handoff\. Close it first"):
        lead_merge(keep=a, merge=b, actor="x")

    assert Lead.objects.count() == 2
    assert EngagementEvent.objects.get().lead_id == b.pk
    assert LeadMerge.objects.count() == 0


@pytest.mark.django_db
def test_merging_into_a_lead_behind_on_the_journey_is_refused():
    known = LeadFactory(stage=Stage.KNOWN)
    customer = LeadFactory(stage=Stage.CUSTOMER)

    with pytest.raises(DomainError, match="further along"):
        lead_merge(keep=known, merge=customer, actor="x")
    assert merge_survivor(known, customer) == (customer, known)
    with pytest.raises(DomainError, match="into itself"):
        lead_merge(keep=known, merge=known, actor="x")


@pytest.mark.django_db
def test_merge_through_the_admin_action(admin_client):
    LeadFactory(phone="03-5555-6666")
    LeadFactory(phone="0355556666")
    duplicates_detect()
    candidate = DuplicateCandidate.objects.get()

    admin_client.post(
        "/admin/leadflow/duplicatecandidate/",
        {"action": "merge", "_selected_action": [candidate.pk]},
    )

    assert Lead.objects.count() == 1
    assert LeadMerge.objects.get().actor_user.username == "admin"


@pytest.mark.django_db
def test_merge_through_the_api_needs_marketing_and_answers_with_the_kept_lead():
    marketer = UserFactory(username="mk", roles=["Marketing"])
    rep = UserFactory(username="rp", roles=["Sales rep"])
    a = LeadFactory(owner=rep)
    b = LeadFactory(owner=rep)

    def client_for(user):
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}"
        )
        return client

    refused = client_for(rep).post("/api/v1/leads/merge/", {"lead_ids": [a.pk, b.pk]}, "json")
    assert refused.status_code == 403
    bad = client_for(marketer).post("/api/v1/leads/merge/", {"lead_ids": [a.pk]}, "json")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation_error"
    ok = client_for(marketer).post("/api/v1/leads/merge/", {"lead_ids": [a.pk, b.pk]}, "json")
    assert ok.status_code == 200
    assert ok.json()["id"] == a.pk
    assert Lead.objects.count() == 1


@pytest.mark.django_db
def test_merged_scores_are_recomputed_from_both_histories():
    from django.utils import timezone

    from scoring.models import LeadScore
    from scoring.services import lead_score_changes

    now = timezone.now()
    a = LeadFactory()
    b = LeadFactory()
    a_events = EngagementEventFactory.create_batch(2, lead=a, kind="email_click", occurred_at=now)
    b_events = EngagementEventFactory.create_batch(3, lead=b, kind="email_click", occurred_at=now)
    lead_score_changes(lead=a, events=a_events)
    lead_score_changes(lead=b, events=b_events)
    assert LeadScore.objects.get(lead=a).engagement == 6  # 3 points a click

    lead_merge(keep=a, merge=b, actor="x")

    assert LeadScore.objects.get(lead=a).engagement == 15
    assert not LeadScore.objects.filter(lead_id=b.pk).exists()
