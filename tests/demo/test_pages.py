"""Pages and admin lists on the demo data. The demo is loaded once for tests/demo/
(the `demo_data` fixture, tests/demo/conftest.py); each test runs in its own transaction
inside that load's, so what one test changes the next does not see."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from integrations.models import InboundEvent, Source
from integrations.outbound.models import Destination, OutboxMessage
from leadflow.demo.data import DEMO_PASSWORD
from leadflow.models import EngagementEvent, Lead, Stage, StageTransition, User

# One worker loads the demo once for tests/demo/ (pytest-xdist --dist loadgroup; the
# group must be named in each module: xdist does not read a conftest's pytestmark).
pytestmark = [pytest.mark.xdist_group("demo"), pytest.mark.usefixtures("demo_data")]


def _counts() -> dict[str, int]:
    return {
        "leads": Lead.objects.count(),
        "events": EngagementEvent.objects.count(),
        "transitions": StageTransition.objects.count(),
        "users": User.objects.count(),
        "inbound": InboundEvent.objects.count(),
        "outbox": OutboxMessage.objects.count(),
    }


@pytest.mark.django_db
def test_demo_loads_every_stage_and_is_idempotent():
    counts = _counts()
    call_command("load_demo", stdout=io.StringIO())

    assert set(Lead.objects.values_list("stage", flat=True)) == set(Stage.values)
    assert counts == _counts()
    assert User.objects.get(username="rep1").groups.get().name == "Sales rep"
    assert User.objects.get(username="admin").is_superuser


@pytest.mark.django_db
def test_demo_fills_the_integrations_admin_without_calling_out(demo_data, admin_client):
    assert demo_data == []  # the network calls the load attempted

    assert sorted(Source.objects.values_list("slug", "kind")) == [
        ("mautic", "mautic"),
        ("web-form", "generic"),
    ]
    statuses = sorted(InboundEvent.objects.values_list("source__slug", "status"))
    assert statuses == [
        ("mautic", "failed"),
        ("mautic", "processed"),
        ("mautic", "processed"),
        ("mautic", "processed"),
        ("web-form", "failed"),
        ("web-form", "processed"),
        ("web-form", "processed"),
    ]
    assert Lead.objects.filter(email="m.kobayashi@hinode-foods.example.jp").exists()
    destination = Destination.objects.get()
    assert (destination.kind, destination.enabled) == ("webhook", False)
    assert sorted(OutboxMessage.objects.values_list("event", "status")) == [
        ("accepted", "dead"),
        ("accepted", "delivered"),
        ("lost", "delivered"),
        ("mql_created", "delivered"),
        ("mql_created", "delivered"),
        ("mql_created", "delivered"),
        ("rejected", "delivered"),
        ("won", "delivered"),
    ]
    dead = OutboxMessage.objects.get(status="dead")
    assert dead.response_status == 422
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in dead.response_body
    assert not OutboxMessage.objects.filter(status__in=["pending", "in_flight"]).exists()
    for url in (
        "/admin/integrations/source/",
        "/admin/integrations/inboundevent/",
        "/admin/integrations/destination/",
        "/admin/integrations/outboxmessage/",
        f"/admin/integrations/outboxmessage/{dead.pk}/change/",
    ):
        assert admin_client.get(url).status_code == 200


@pytest.mark.django_db
def test_the_admin_greets_the_demo_admin_by_a_whole_name(client):
    admin = User.objects.get(username="admin")
    client.force_login(admin)

    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()

    assert "<strong>管理者</strong>" in page
    assert "<strong>者</strong>" not in page
    assert admin.get_full_name() == "管理者"


@pytest.mark.django_db
def test_reloading_the_demo_fixes_the_admins_split_name():
    User.objects.filter(username="admin").update(last_name="管理", first_name="者")

    call_command("load_demo", stdout=io.StringIO())

    admin = User.objects.get(username="admin")
    assert (admin.last_name, admin.first_name) == ("", "管理者")


@pytest.mark.django_db
def test_a_demo_login_logs_in_through_the_login_form(client):
    response = client.post(reverse("login"), {"username": "rep1", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    home = client.get("/").content.decode()
    assert "佐藤 大輔" in home


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/leadflow/lead/",
        "/admin/leadflow/company/",
        "/admin/leadflow/engagementevent/",
        "/admin/leadflow/stagetransition/",
        "/admin/leadflow/leadexternalid/",
        "/admin/leadflow/user/",
    ],
)
def test_admin_pages_render_with_demo_data(admin_client, url):
    assert admin_client.get(url).status_code == 200


@pytest.mark.django_db
def test_admin_lead_page_and_search(admin_client):
    lead = Lead.objects.exclude(email="").filter(stage=Stage.SQL).first()
    assert admin_client.get(f"/admin/leadflow/lead/{lead.pk}/change/").status_code == 200
    found = admin_client.get("/admin/leadflow/lead/", {"q": lead.email})
    assert lead.email in found.content.decode()


def test_the_module_is_one_xdist_group_under_make_test(request):
    # `make test` runs --dist loadgroup; a pytest that xdist cannot tag (pytest 9.2 with
    # pytest-xdist 3.8) spreads the group over both workers and loads the demo twice.
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not run with pytest-xdist --dist loadgroup")
    assert request.node.nodeid.endswith("@demo")
