"""Claim within minutes, or pass on (#19): windows, claims by open / acknowledge /
activity, passes, the queue with the managers' notice, and a claim racing a pass.

The clock is pinned on the default business calendar (9:00–18:00 Asia/Tokyo, weekdays,
national holidays): Monday 2026-11-02; Tuesday 11-03 is 文化の日.
"""

import datetime as dt

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse

from handoff import activities, claims, notifications, routing, verdicts
from handoff.models import (
    Assignment,
    AssignmentVia,
    ClaimStatus,
    ClaimVia,
    Handoff,
    HandoffClaim,
    HandoffTimeline,
    QueueNotice,
    TeamMembership,
)
from handoff.tasks import assign_from_queue_task
from leadflow.errors import DomainError
from tests.concurrency import run_at_once
from tests.handoff.helpers import make_mql_for, make_team

JST = dt.timezone(dt.timedelta(hours=9))


def at(day, hour, minute=0, second=0):
    return dt.datetime(2026, 11, day, hour, minute, second, tzinfo=JST)


def _claiming_team(name, reps):
    """The default team, with claims required (15 minutes, 2 passes)."""
    team, members, manager = make_team(name, reps=reps, default=True)
    team.claim_required = True
    team.save()
    return team, members, manager


@pytest.fixture
def team(db):
    """Kanto: rep1, rep2, rep3 and a manager; claims required, 15 minutes, 2 passes.
    rep3 is behind rep2 in the round robin, so passes go rep1 → rep2 → rep3."""
    return _claiming_team("Kanto", 3)


@pytest.fixture
def sent(monkeypatch):
    """The queue notices handed to Celery."""
    from handoff import tasks

    notices: list[int] = []
    monkeypatch.setattr(
        tasks.notify_queued_task, "apply_async", lambda args, **options: notices.extend(args)
    )
    return notices


def _new_mql(team, time_machine, when=None):
    kanto, reps, _manager = team
    time_machine.move_to(when or at(2, 10), tick=False)
    handoff = make_mql_for(reps[0], reps[1:])
    # rep3 behind rep2: a pass picks rep2 first.
    TeamMembership.objects.filter(team=kanto, rep=reps[2]).update(last_assignment_seq=1)
    return handoff


def _claims(handoff):
    return list(
        HandoffClaim.objects.filter(handoff=handoff)
        .order_by("started_at", "id")
        .values_list("rep__username", "status", "claimed_via", "passed_to__username")
    )


def test_a_new_assignment_opens_a_window_of_15_business_minutes(team, time_machine):
    handoff = _new_mql(team, time_machine)

    claim = HandoffClaim.objects.get(handoff=handoff)
    assert (claim.rep, claim.status) == (team[1][0], ClaimStatus.PENDING)
    assert (claim.started_at, claim.due_at) == (at(2, 10), at(2, 10, 15))
    assert claim.assignment == Assignment.objects.get(handoff=handoff)


def test_the_window_counts_working_time_over_the_night_and_the_holiday(team, time_machine):
    # Monday 17:50: 10 minutes today, then Tuesday is 文化の日, so 5 minutes on Wednesday.
    handoff = _new_mql(team, time_machine, at(2, 17, 50))

    assert HandoffClaim.objects.get(handoff=handoff).due_at == at(4, 9, 5)


def test_a_team_without_claims_gets_no_window_and_the_sweep_passes_nothing(team, time_machine):
    team[0].claim_required = False
    team[0].save()
    handoff = _new_mql(team, time_machine)
    time_machine.move_to(at(2, 11), tick=False)

    result = claims.claims_sweep()

    assert HandoffClaim.objects.filter(handoff=handoff).count() == 0
    assert (result.passed, result.queued, result.more) == ([], [], False)
    assert Handoff.objects.get(pk=handoff.pk).assigned_to == team[1][0]


def test_opening_the_page_claims_it_and_is_the_timelines_opened_instant(team, time_machine, client):
    handoff = _new_mql(team, time_machine)
    time_machine.move_to(at(2, 10, 7), tick=False)
    client.force_login(team[1][0])

    response = client.get(reverse("handoff:detail", args=[handoff.pk]))

    assert response.status_code == 200
    assert "You claimed this MQL." in response.content.decode()
    claim = HandoffClaim.objects.get(handoff=handoff)
    assert (claim.status, claim.claimed_via, claim.resolved_at) == (
        ClaimStatus.CLAIMED,
        ClaimVia.OPENED,
        at(2, 10, 7),
    )
    assert HandoffTimeline.objects.get(handoff=handoff).opened_at == at(2, 10, 7)


def test_a_manager_or_colleague_opening_it_claims_nothing(team, time_machine, client):
    handoff = _new_mql(team, time_machine)
    client.force_login(team[2])

    assert client.get(reverse("handoff:detail", args=[handoff.pk])).status_code == 200

    assert _claims(handoff) == [("kanto-rep1", ClaimStatus.PENDING, "", None)]


def test_acknowledging_in_the_inbox_claims_it(team, time_machine, client):
    handoff = _new_mql(team, time_machine)
    time_machine.move_to(at(2, 10, 3), tick=False)
    client.force_login(team[1][0])
    inbox = client.get(reverse("handoff:inbox")).content.decode()
    assert "Claim by 11/02 10:15, or it passes to the next rep." in inbox

    response = client.post(reverse("handoff:claim", args=[handoff.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("handoff:inbox")
    claim = HandoffClaim.objects.get(handoff=handoff)
    assert (claim.status, claim.claimed_via, claim.resolved_at) == (
        ClaimStatus.CLAIMED,
        ClaimVia.ACKNOWLEDGED,
        at(2, 10, 3),
    )
    assert HandoffTimeline.objects.get(handoff=handoff).opened_at == at(2, 10, 3)
    assert "Claim by" not in client.get(reverse("handoff:inbox")).content.decode()


def test_logging_an_activity_claims_it(team, time_machine):
    handoff = _new_mql(team, time_machine)
    time_machine.move_to(at(2, 10, 9), tick=False)

    activities.activity_log(
        handoff=handoff, actor=team[1][0], kind="call", outcome="no_answer", at=at(2, 10, 8)
    )

    claim = HandoffClaim.objects.get(handoff=handoff)
    # The claim is when it was logged; the first contact keeps the call's own time.
    assert (claim.status, claim.claimed_via, claim.resolved_at) == (
        ClaimStatus.CLAIMED,
        ClaimVia.ACTIVITY,
        at(2, 10, 9),
    )
    assert Handoff.objects.get(pk=handoff.pk).first_contact_at == at(2, 10, 8)


def test_a_claimed_handoff_is_not_passed(team, time_machine):
    handoff = _new_mql(team, time_machine)
    claims.claim_acknowledge(handoff=handoff, actor=team[1][0])
    time_machine.move_to(at(2, 10, 16), tick=False)

    assert claims.claims_sweep().passed == []
    assert Handoff.objects.get(pk=handoff.pk).assigned_to == team[1][0]


def test_the_api_lists_the_windows_and_claims(team, time_machine, client):
    handoff = _new_mql(team, time_machine)
    url = f"/api/v1/handoffs/{handoff.pk}/claims/"
    client.force_login(team[1][1])  # rep2 cannot see rep1's handoff
    assert client.post(url).status_code == 404
    client.force_login(team[2])  # the manager sees it and may act, but it is not theirs
    refused = client.post(url)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "not_yours"
    client.force_login(team[1][0])

    claimed = client.post(url)

    assert claimed.status_code == 200
    assert claimed.json()["status"] == "claimed"
    assert claimed.json()["claimed_via"] == "acknowledged"
    again = client.post(url)  # a second claim changes nothing
    assert (again.status_code, again.json()) == (200, claimed.json())
    listed = client.get(url).json()
    assert [(row["rep"]["username"], row["status"], row["due_at"]) for row in listed] == [
        ("kanto-rep1", "claimed", "2026-11-02T10:15:00+09:00")
    ]


def test_there_is_nothing_to_claim_without_a_window(team, time_machine, client):
    team[0].claim_required = False
    team[0].save()
    handoff = _new_mql(team, time_machine)
    client.force_login(team[1][0])

    response = client.post(f"/api/v1/handoffs/{handoff.pk}/claims/")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "nothing_to_claim"
    assert client.get(f"/api/v1/handoffs/{handoff.pk}/claims/").json() == []


def test_an_unclaimed_mql_passes_to_the_next_rep_after_the_window(team, time_machine):
    handoff = _new_mql(team, time_machine)
    time_machine.move_to(at(2, 10, 14, 59), tick=False)
    assert claims.claims_sweep().passed == []
    time_machine.move_to(at(2, 10, 15), tick=False)

    result = claims.claims_sweep()

    assert result.passed == [handoff.pk]
    handoff.refresh_from_db()
    assert handoff.assigned_to == team[1][1]
    last = Assignment.objects.filter(handoff=handoff).latest("assigned_at", "id")
    assert (last.rep, last.previous_rep, last.via, last.reason) == (
        team[1][1],
        team[1][0],
        AssignmentVia.PASSED,
        "Not claimed within 15 minutes.",
    )
    assert _claims(handoff) == [
        ("kanto-rep1", ClaimStatus.PASSED, "", "kanto-rep2"),
        ("kanto-rep2", ClaimStatus.PENDING, "", None),
    ]
    assert HandoffClaim.objects.get(handoff=handoff, rep=team[1][1]).due_at == at(2, 10, 30)
    assert handoff.lead.__class__.objects.get(pk=handoff.lead_id).owner == team[1][1]


def test_passes_run_out_into_the_queue_and_the_managers_are_told(
    team, time_machine, sent, django_capture_on_commit_callbacks
):
    handoff = _new_mql(team, time_machine)
    for minute in (15, 30):
        time_machine.move_to(at(2, 10, minute), tick=False)
        claims.claims_sweep()
    time_machine.move_to(at(2, 10, 45), tick=False)

    with django_capture_on_commit_callbacks(execute=True):
        result = claims.claims_sweep()

    assert (result.passed, result.queued) == ([], [handoff.pk])
    handoff.refresh_from_db()
    assert handoff.is_queued
    assert _claims(handoff) == [
        ("kanto-rep1", ClaimStatus.PASSED, "", "kanto-rep2"),
        ("kanto-rep2", ClaimStatus.PASSED, "", "kanto-rep3"),
        ("kanto-rep3", ClaimStatus.QUEUED, "", None),
    ]
    assert HandoffClaim.objects.get(handoff=handoff, rep=team[1][2]).reason == (
        "Not claimed within 15 minutes. No passes left: to the team queue."
    )
    notice = QueueNotice.objects.get(handoff=handoff)
    assert sent == [notice.pk]
    assert notice.created_at == at(2, 10, 45)
    assert notifications.queue_notice_notify(notice_id=notice.pk) == {"email": True, "slack": False}
    assert [m.to for m in mail.outbox] == [["kanto-manager@example.jp"]]
    # Held for a manager: the queue drain does not hand it out again.
    assert assign_from_queue_task(team[0].pk) == 0
    assert Handoff.objects.get(pk=handoff.pk).assigned_to is None


def test_it_never_goes_back_to_a_rep_who_let_it_pass(team, time_machine, sent):
    team[0].claim_max_passes = 5
    team[0].save()
    TeamMembership.objects.filter(rep=team[1][2]).delete()
    handoff = _new_mql(team, time_machine)
    time_machine.move_to(at(2, 10, 15), tick=False)
    claims.claims_sweep()  # to rep2
    time_machine.move_to(at(2, 10, 30), tick=False)

    result = claims.claims_sweep()

    assert result.queued == [handoff.pk]
    assert Handoff.objects.get(pk=handoff.pk).assigned_to is None
    assert HandoffClaim.objects.get(handoff=handoff, rep=team[1][1]).reason == (
        "Not claimed within 15 minutes. Nobody else can take it now: to the team queue."
    )


def test_a_manager_reassigning_overtakes_the_window(team, time_machine):
    handoff = _new_mql(team, time_machine)
    time_machine.move_to(at(2, 10, 5), tick=False)

    routing.handoff_reassign(
        handoff=handoff, to_rep=team[1][2], actor=team[2], reason="Knows the client"
    )

    assert _claims(handoff) == [
        ("kanto-rep1", ClaimStatus.SUPERSEDED, "", None),
        ("kanto-rep3", ClaimStatus.PENDING, "", None),
    ]
    assert HandoffClaim.objects.get(handoff=handoff, rep=team[1][2]).due_at == at(2, 10, 20)


def test_a_decided_handoff_is_not_passed(team, time_machine):
    handoff = _new_mql(team, time_machine)
    verdicts.handoff_reject(
        handoff=handoff, actor=team[2], reason="duplicate", comment="Same person as #1"
    )
    time_machine.move_to(at(2, 10, 15), tick=False)

    result = claims.claims_sweep()

    assert (result.passed, result.queued) == ([], [])
    assert _claims(handoff) == [("kanto-rep1", ClaimStatus.SUPERSEDED, "", None)]


def test_sweep_batches_are_bounded(team, time_machine):
    first = _new_mql(team, time_machine)
    second = _new_mql(team, time_machine, at(2, 10, 1))
    time_machine.move_to(at(2, 10, 20), tick=False)

    result = claims.claims_sweep(batch_size=1)

    assert (result.passed, result.more) == ([first.pk], True)
    assert claims.claims_sweep(batch_size=1).passed == [second.pk]


def test_acknowledging_after_the_pass_is_refused(team, time_machine):
    handoff = _new_mql(team, time_machine)
    time_machine.move_to(at(2, 10, 15), tick=False)
    claims.claims_sweep()

    with pytest.raises(DomainError) as refused:
        claims.claim_acknowledge(handoff=handoff, actor=team[1][0])

    assert refused.value.code == "not_yours"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_racing_a_pass_has_exactly_one_winner(time_machine):
    kanto, reps, _manager = _claiming_team("Race", 2)
    outcomes = []
    for round_ in range(6):
        time_machine.move_to(at(2, 10, round_), tick=False)
        handoff = make_mql_for(reps[0], reps[1:])
        claim = HandoffClaim.objects.get(handoff=handoff, status=ClaimStatus.PENDING)
        now = at(2, 10, 30)

        def acknowledge(handoff=handoff):
            try:
                claims.claim_acknowledge(handoff=handoff, actor=reps[0])
            except DomainError as error:
                return error.code
            return True

        def pass_on(claim=claim, now=now):
            return claims.claim_pass(
                claim_id=claim.pk, handoff_id=claim.handoff_id, team_id=kanto.pk, now=now
            )

        claimed, passed = run_at_once(acknowledge, pass_on)
        claim.refresh_from_db()
        holder = Handoff.objects.get(pk=handoff.pk).assigned_to
        if claimed is True:
            # The claim won: the pass found nothing pending (or skipped the locked row).
            assert passed is None
            assert (claim.status, holder) == (ClaimStatus.CLAIMED, reps[0])
        else:
            assert claimed in ("not_yours", "nothing_to_claim")
            assert passed == ClaimStatus.PASSED
            assert (claim.status, holder) == (ClaimStatus.PASSED, reps[1])
        outcomes.append(claim.status)
        # Back to rep1 for the next round (a manager may choose anyone).
        Handoff.objects.filter(pk=handoff.pk).update(status="rejected")

    assert connection.vendor == "postgresql"
    assert len(outcomes) == 6


def test_the_dashboard_and_its_api_show_time_to_claim_and_passes_per_rep(
    team, time_machine, client
):
    _kanto, (rep1, rep2, _rep3), manager = team
    first = _new_mql(team, time_machine)  # rep1 lets it pass at 10:15, rep2 claims at 10:20
    second = _new_mql(team, time_machine, at(2, 11))  # rep1 claims at 11:04
    time_machine.move_to(at(2, 10, 15), tick=False)
    claims.claims_sweep()
    time_machine.move_to(at(2, 10, 20), tick=False)
    claims.claim_acknowledge(handoff=first, actor=rep2)
    time_machine.move_to(at(2, 11, 4), tick=False)
    claims.claim_acknowledge(handoff=second, actor=rep1)
    client.force_login(manager)

    body = client.get("/api/v1/metrics/claims/?from=2026-11-01&to=2026-11-02").json()["results"]

    assert body == {
        "reps": [
            {
                "rep_id": rep1.pk,
                "rep": str(rep1),
                "windows": 2,
                "claimed": 1,
                "let_pass": 1,
                "received": 0,
                "median_minutes": 4.0,
            },
            {
                "rep_id": rep2.pk,
                "rep": str(rep2),
                "windows": 1,
                "claimed": 1,
                "let_pass": 0,
                "received": 1,
                "median_minutes": 5.0,
            },
        ],
        "median_minutes": 4.5,
        "passes": 1,
    }
    page = client.get("/dashboard/?from=2026-11-01&to=2026-11-02").content.decode()
    assert "Median time to claim: 4.5 min. 1 MQL passed on for want of a claim." in page


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_pass_each_window_once(time_machine):
    _kanto, reps, _manager = _claiming_team("Sweeps", 2)
    handoffs = []
    for minute in range(4):
        time_machine.move_to(at(2, 10, minute), tick=False)
        handoffs.append(make_mql_for(reps[0], reps[1:]))
    time_machine.move_to(at(2, 10, 30), tick=False)

    results = run_at_once(claims.claims_sweep, claims.claims_sweep)

    passed = sorted(results[0].passed + results[1].passed)
    assert passed == sorted(h.pk for h in handoffs)
    assert set(HandoffClaim.objects.filter(rep=reps[0]).values_list("status", flat=True)) == {
        ClaimStatus.PASSED
    }
    assert Assignment.objects.filter(via=AssignmentVia.PASSED).count() == 4
    assert set(Handoff.objects.values_list("assigned_to", flat=True)) == {reps[1].pk}
