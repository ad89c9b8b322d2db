import io

import httpx
import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from integrations.models import InboundEvent, Source
from integrations.outbound.models import Destination, OutboxMessage
from leadflow.demo.data import DEMO_PASSWORD
from leadflow.models import EngagementEvent, Lead, Stage, StageTransition, User
from leadflow.roles import ROLE_PERMISSIONS, ROLES


@pytest.mark.django_db
def test_roles_exist_after_migrate_with_exactly_their_permissions():
    for role in ROLES:
        group = Group.objects.get(name=role)
        perms = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert perms == set(ROLE_PERMISSIONS[role])


@pytest.mark.django_db
def test_home_page_for_anonymous_offers_login(client):
    response = client.get("/")
    assert response.status_code == 200
    assert reverse("login").encode() in response.content


@pytest.mark.django_db
def test_home_page_is_japanese_by_default_and_english_on_request(client, settings):
    settings.LANGUAGE_CODE = "ja"
    japanese = client.get("/").content.decode()
    assert 'lang="ja"' in japanese
    assert "ログイン" in japanese
    response = client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert response.status_code == 302
    english = client.get("/").content.decode()
    assert 'lang="en"' in english
    assert "Log in" in english


@pytest.mark.django_db
def test_api_urls_that_do_not_exist_answer_in_the_json_error_shape(client):
    response = client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such API endpoint."}}


@pytest.mark.django_db
def test_demo_loads_every_stage_and_is_idempotent():
    call_command("load_demo", stdout=io.StringIO())
    counts = {
        "leads": Lead.objects.count(),
        "events": EngagementEvent.objects.count(),
        "transitions": StageTransition.objects.count(),
        "users": User.objects.count(),
        "inbound": InboundEvent.objects.count(),
        "outbox": OutboxMessage.objects.count(),
    }
    call_command("load_demo", stdout=io.StringIO())

    assert set(Lead.objects.values_list("stage", flat=True)) == set(Stage.values)
    assert counts == {
        "leads": Lead.objects.count(),
        "events": EngagementEvent.objects.count(),
        "transitions": StageTransition.objects.count(),
        "users": User.objects.count(),
        "inbound": InboundEvent.objects.count(),
        "outbox": OutboxMessage.objects.count(),
    }
    assert User.objects.get(username="rep1").groups.get().name == "Sales rep"
    assert User.objects.get(username="admin").is_superuser


@pytest.mark.django_db
def test_demo_fills_the_integrations_admin_without_calling_out(admin_client, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("load_demo must not call out")

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", no_network)

    call_command("load_demo", stdout=io.StringIO())

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
    call_command("load_demo", stdout=io.StringIO())
    admin = User.objects.get(username="admin")
    client.force_login(admin)

    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()

    assert "<strong>管理者</strong>" in page
    assert "<strong>者</strong>" not in page
    assert admin.get_full_name() == "管理者"


@pytest.mark.django_db
def test_reloading_the_demo_fixes_the_admins_split_name():
    call_command("load_demo", stdout=io.StringIO())
    User.objects.filter(username="admin").update(last_name="管理", first_name="者")

    call_command("load_demo", stdout=io.StringIO())

    admin = User.objects.get(username="admin")
    assert (admin.last_name, admin.first_name) == ("", "管理者")


@pytest.mark.django_db
def test_a_demo_login_logs_in_through_the_login_form(client):
    call_command("load_demo", stdout=io.StringIO())
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
    call_command("load_demo", stdout=io.StringIO())
    assert admin_client.get(url).status_code == 200


@pytest.mark.django_db
def test_admin_lead_page_and_search(admin_client):
    call_command("load_demo", stdout=io.StringIO())
    lead = Lead.objects.exclude(email="").filter(stage=Stage.SQL).first()
    assert admin_client.get(f"/admin/leadflow/lead/{lead.pk}/change/").status_code == 200
    found = admin_client.get("/admin/leadflow/lead/", {"q": lead.email})
    assert lead.email in found.content.decode()


@pytest.mark.django_db
def test_admin_move_action_uses_the_lifecycle_and_reports_refusals(admin_client):
    from tests.factories import LeadFactory

    known = LeadFactory(stage=Stage.KNOWN)
    customer = LeadFactory(stage=Stage.CUSTOMER)
    response = admin_client.post(
        "/admin/leadflow/lead/",
        {
            "action": "move_to_stage",
            "_selected_action": [known.pk, customer.pk],
            "to_stage": "disqualified",
            "reason": "competitor employee",
        },
        follow=True,
    )
    assert response.status_code == 200
    known.refresh_from_db()
    customer.refresh_from_db()
    assert known.stage == Stage.DISQUALIFIED
    assert customer.stage == Stage.CUSTOMER
    messages = [str(m) for m in response.context["messages"]]
    assert f"{customer.email}: A lead cannot move from Customer to Disqualified." in messages
    assert "Moved 1 lead." in messages
    transition = StageTransition.objects.get(lead=known)
    assert transition.reason == "competitor employee"


@pytest.mark.django_db
def test_admin_add_lead_normalises_the_email(admin_client):
    response = admin_client.post(
        "/admin/leadflow/lead/add/",
        {
            "email": " Ｈａｎａ@Example.JP ",
            "last_name": "花",
            "first_name": "子",
            "attributes": "{}",
            "external_ids-TOTAL_FORMS": "0",
            "external_ids-INITIAL_FORMS": "0",
            "transitions-TOTAL_FORMS": "0",
            "transitions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Lead.objects.get().email == "hana@example.jp"


@pytest.mark.django_db
def test_admin_refuses_a_known_lead_without_email(admin_client):
    response = admin_client.post(
        "/admin/leadflow/lead/add/",
        {
            "email": "",
            "attributes": "{}",
            "external_ids-TOTAL_FORMS": "0",
            "external_ids-INITIAL_FORMS": "0",
            "transitions-TOTAL_FORMS": "0",
            "transitions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == [
        "Only an anonymous lead may have no e-mail."
    ]
    assert Lead.objects.count() == 0


@pytest.mark.django_db
def test_lead_attributes_with_a_nul_character_are_a_form_error():
    # PostgreSQL's jsonb cannot store \u0000: saving them in the admin was a 500.
    from leadflow.forms import LeadForm
    from tests.factories import LeadFactory

    lead = LeadFactory()
    data = {"email": lead.email, "source": "test", "role": "", "attributes": '{"memo\\u0000": "x"}'}

    form = LeadForm(data=data, instance=lead)

    assert form.errors.get("attributes") == ["Null characters are not allowed."]
    assert (
        LeadForm(data={**data, "attributes": '{"memo": "x"}'}, instance=lead).errors.get(
            "attributes"
        )
        is None
    )
