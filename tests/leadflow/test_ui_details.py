"""The small things of issue #15, item 7, each found by trying the demo as a new user:
where people land after logging in, a translated 404 under DEBUG, a favicon, Japanese
lists, one spelling of versions, labels instead of codes, 下限/上限, users beside groups."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.urls import reverse
from django.utils import timezone, translation

from handoff.models import RoutingRule
from leadflow.japan import join_words
from leadflow.roles import MARKETING
from scoring.models import FitRule, ModelStatus
from tests.factories import UserFactory
from tests.handoff.helpers import make_mql, make_team, set_profile

PASSWORD = "pw-for-tests"  # tests.factories.UserFactory's
STATIC = Path(__file__).resolve().parents[2] / "static"


@pytest.fixture
def kanto(db):
    return make_team("Kanto", reps=2, default=True)


def _log_in(client, user, **extra):
    return client.post(reverse("login"), {"username": user.username, "password": PASSWORD, **extra})


# --- where people land -------------------------------------------------------------------


def test_a_rep_lands_in_the_inbox_after_logging_in(client, kanto):
    _team, (rep, _other), _manager = kanto

    response = _log_in(client, rep)

    assert (response.status_code, response["Location"]) == (302, "/inbox/")


def test_a_manager_and_marketing_land_on_the_dashboard(client, kanto):
    _team, _reps, manager = kanto
    marketer = UserFactory(username="marketer", roles=[MARKETING])

    assert _log_in(client, manager)["Location"] == "/dashboard/"
    client.logout()
    assert _log_in(client, marketer)["Location"] == "/dashboard/"


def test_someone_with_no_role_lands_on_the_start_page(client, db):
    assert _log_in(client, UserFactory(username="nobody"))["Location"] == "/"


def test_a_link_followed_before_logging_in_still_wins(client, kanto):
    _team, (rep, _other), _manager = kanto

    response = _log_in(client, rep, next="/account/token/")

    assert response["Location"] == "/account/token/"


# --- not found -----------------------------------------------------------------------------


def test_another_reps_handoff_is_the_translated_404_page_also_under_debug(client, kanto, settings):
    settings.DEBUG = True  # what `make run` runs with
    _team, (alice, bob), _manager = kanto
    set_profile(alice, away=True)
    theirs = make_mql()
    assert theirs.assigned_to == bob
    client.force_login(alice)

    response = client.get(reverse("handoff:detail", args=[theirs.pk]), HTTP_ACCEPT_LANGUAGE="ja")

    body = response.content.decode()
    assert response.status_code == 404
    assert "<h1>ページが見つかりません</h1>" in body
    assert "URLconf" not in body  # not Django's technical page with every route
    assert 'href="/inbox/"' in body  # the header still leads on


# --- favicon ------------------------------------------------------------------------------


def test_every_page_names_a_favicon_and_favicon_ico_leads_to_it(client, db):
    page = client.get("/").content.decode()
    answer = client.get("/favicon.ico")

    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    assert (answer.status_code, answer["Location"]) == (302, "/static/favicon.svg")
    assert (STATIC / "favicon.svg").read_text().startswith("<svg")


# --- Japanese lists ----------------------------------------------------------------------------


def test_lists_are_joined_with_the_japanese_comma_in_japanese():
    with translation.override("ja"):
        assert join_words(["製造", "IT"]) == "製造、IT"
    with translation.override("en"):
        assert join_words(["manufacturing", "IT"]) == "manufacturing, IT"


def test_a_time_ago_reads_with_the_japanese_comma(db):
    long_ago = timezone.now() - dt.timedelta(days=30 + 21 + 1)

    with translation.override("ja"):
        assert naturaltime(long_ago) == "1ヶ月、3週間前"


# --- the admin ---------------------------------------------------------------------------------


def test_users_are_listed_beside_groups_not_under_leads(admin_client):
    apps = {app["app_label"]: app for app in admin_client.get("/admin/").context["app_list"]}

    assert [m["object_name"] for m in apps["auth"]["models"]] == ["Group", "User"]
    assert "User" not in [m["object_name"] for m in apps["leadflow"]["models"]]
    # Only the index moves it: the leads app's own page and the URLs stay.
    assert admin_client.get("/admin/leadflow/user/").status_code == 200


def test_routing_rules_list_their_regions_and_industries_by_label(admin_client):
    team, _reps, _manager = make_team("Kanto", reps=1)
    RoutingRule.objects.create(
        name="関東の製造業", team=team, regions=["kanto", "kinki"], industries=["manufacturing"]
    )

    body = admin_client.get("/admin/handoff/routingrule/", HTTP_ACCEPT_LANGUAGE="ja")

    text = body.content.decode()
    assert '<td class="field-region_list">関東、近畿</td>' in text
    assert '<td class="field-industry_list">製造業</td>' in text
    assert "kanto" not in text


@pytest.mark.django_db
def test_a_fit_rule_reads_its_values_as_labels():
    published = FitRule.objects.filter(model__status=ModelStatus.PUBLISHED)
    revenue = published.get(field="company.revenue_band", operator="one_of")
    role = published.get(field="role", operator="equals", value="executive")

    with translation.override("ja"):
        # ¥10B–¥100B is 100億〜1000億円: the label of the code 10b_100b, whatever it says.
        assert (
            revenue.describe()
            == "company.revenue_band いずれかに等しい 100億〜1000億円、1000億円以上"
        )
        assert role.describe() == "role 等しい 経営層"


def test_a_rules_range_is_labelled_lower_and_upper_bound():
    with translation.override("ja"):
        assert (
            str(FitRule._meta.get_field("min_value").verbose_name),
            str(FitRule._meta.get_field("max_value").verbose_name),
        ) == ("下限", "上限")


def test_the_preview_does_not_upper_case_versions():
    template = Path(__file__).resolve().parents[2] / "scoring" / "templates" / "admin"
    preview = (template / "scoring" / "scoringmodel" / "preview.html").read_text()
    css = (STATIC / "css" / "scoring-admin.css").read_text()

    assert "<style" not in preview  # a static file (CSP), linked from the page
    assert "css/scoring-admin.css" in preview
    assert ".scoring-preview thead th { text-transform: none; }" in css
