import pytest
from django.urls import reverse

from handoff.models import Handoff, RoutingRule, Team
from tests.factories import UserFactory
from tests.handoff.helpers import make_mql, make_team, set_profile


@pytest.fixture
def admin_client(client, db):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize(
    "model",
    [
        "team",
        "repprofile",
        "routingrule",
        "handoffpolicy",
        "rejectionreason",
        "handoff",
        "activity",
    ],
)
def test_admin_pages_open(admin_client, model):
    make_team(default=True)
    make_mql()
    assert admin_client.get(reverse(f"admin:handoff_{model}_changelist")).status_code == 200


def test_routing_rule_is_edited_with_checkboxes(admin_client):
    team, _reps, _ = make_team()
    response = admin_client.post(
        reverse("admin:handoff_routingrule_add"),
        {
            "name": "Kansai makers",
            "order": 5,
            "is_active": "on",
            "team": team.pk,
            "regions": ["kinki"],
            "industries": ["manufacturing", "it"],
            "min_employees": "100",
            "max_employees": "50",
        },
    )
    assert response.status_code == 200  # max below min: the form says so
    assert "Must not be below" in response.content.decode()

    admin_client.post(
        reverse("admin:handoff_routingrule_add"),
        {
            "name": "Kansai makers",
            "order": 5,
            "is_active": "on",
            "team": team.pk,
            "regions": ["kinki"],
            "industries": ["manufacturing", "it"],
        },
    )
    rule = RoutingRule.objects.get()
    assert (rule.regions, rule.industries, rule.prefectures) == (
        ["kinki"],
        ["manufacturing", "it"],
        [],
    )


def test_team_admin_action_assigns_the_queue(admin_client):
    team, (rep,), _ = make_team(reps=1, default=True)
    set_profile(rep, away=True)
    queued = make_mql()
    set_profile(rep, away=False)

    admin_client.post(
        reverse("admin:handoff_team_changelist"),
        {"action": "assign_queued", "_selected_action": [team.pk]},
    )

    assert Handoff.objects.get(pk=queued.pk).assigned_to == rep
    assert Team.objects.get().assignment_counter == 1


def test_the_api_schema_describes_the_handoff_actions(admin_client):
    response = admin_client.get("/api/schema/")
    assert response.status_code == 200
    body = response.content.decode()
    for path in ("/api/v1/handoffs/{id}/accept/", "/api/v1/handoffs/{id}/reject/"):
        assert path in body


def test_a_queued_handoff_shows_whether_the_managers_were_told(admin_client):
    _team, (rep,), _manager = make_team(reps=1, default=True)
    set_profile(rep, away=True)
    handoff = make_mql()

    response = admin_client.get(reverse("admin:handoff_handoff_change", args=[handoff.pk]))

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="queue_notice-group"' in body
    assert 'name="queue_notice-TOTAL_FORMS" value="1"' in body  # the notice row is shown


def test_the_api_schema_describes_my_availability(admin_client):
    schema = admin_client.get("/api/schema/?format=json").json()

    operations = schema["paths"]["/api/v1/me/availability/"]
    assert sorted(operations) == ["get", "put"]
    assert set(operations["put"]["responses"]) == {"200", "400", "401", "403", "422"}


def test_handoff_and_lead_change_pages_cost_the_same_queries_for_1_or_10_rows(admin_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from handoff.models import Activity, Assignment, AssignmentVia
    from leadflow.models import Stage, StageTransition

    _team, (rep,), _manager = make_team(reps=1, default=True)
    handoff = make_mql()

    def add_rows(n: int) -> None:
        for _ in range(n):
            # A different user on every row, so no row can use another's cached user.
            user = UserFactory()
            Activity.objects.create(handoff=handoff, kind="call", outcome="reached", by=user)
            Assignment.objects.create(
                handoff=handoff,
                rep=user,
                previous_rep=rep,
                via=AssignmentVia.MANUAL,
                by=UserFactory(),
                assigned_at=timezone.now(),
            )
            StageTransition.objects.create(
                lead=handoff.lead,
                from_stage=Stage.MQL,
                to_stage=Stage.MQL,
                occurred_at=timezone.now(),
                actor_user=user,
            )

    def queries() -> tuple[int, int]:
        counts = []
        for url in (
            reverse("admin:handoff_handoff_change", args=[handoff.pk]),
            reverse("admin:leadflow_lead_change", args=[handoff.lead_id]),
        ):
            with CaptureQueriesContext(connection) as captured:
                assert admin_client.get(url).status_code == 200
            counts.append(len(captured))
        return counts[0], counts[1]

    queries()  # warm the per-process caches (content types, the admin's own)
    add_rows(1)
    one = queries()
    add_rows(9)
    assert queries() == one
