import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from leadflow.models import Lead, Stage, StageTransition
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
