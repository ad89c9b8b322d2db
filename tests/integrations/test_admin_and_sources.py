"""Sources (command, admin, mapping validation), the inbound inbox in the admin, and the
scoring hook contract."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations import services
from integrations.mapping import (
    lead_data_from_fields,
    source_mapping_default,
    source_mapping_problems,
)
from integrations.models import InboundEvent, InboundStatus, Source
from integrations.normalize import (
    ValueProblem,
    industry_from_text,
    parse_count,
    revenue_band_from_amount,
    role_from_title,
    split_full_name,
)
from leadflow.models import EngagementEvent, Lead
from leadflow.roles import MARKETING, sync_roles
from tests.factories import UserFactory
from tests.integrations.conftest import deliver, make_source, post

pytestmark = pytest.mark.django_db


def test_add_source_prints_the_public_url(settings):
    settings.PUBLIC_BASE_URL = "https://leadflow.example.co.jp/"
    out = StringIO()

    call_command("add_source", "mautic", "mautic-prod", "--secret", "abc", stdout=out)

    source = Source.objects.get(slug="mautic-prod")
    assert (source.kind, source.secret, source.enabled) == ("mautic", "abc", True)
    assert source.mapping == source_mapping_default("mautic")
    assert "URL: https://leadflow.example.co.jp/api/v1/intake/mautic-prod/" in out.getvalue()
    assert "Secret:" not in out.getvalue()


def test_add_source_without_secret_makes_and_shows_one():
    out = StringIO()

    call_command("add_source", "generic", "zapier", stdout=out)

    secret = Source.objects.get().secret
    assert len(secret) == 64
    assert f"Secret: {secret}" in out.getvalue()


def test_add_source_refuses_a_taken_slug():
    make_source("generic", "zapier")

    with pytest.raises(CommandError, match="slug"):
        call_command("add_source", "generic", "zapier", "--secret", "x")


def test_add_source_refuses_an_unknown_kind():
    with pytest.raises(CommandError):
        call_command("add_source", "pardot", "p", "--secret", "x")


def test_mapping_validation_names_each_problem():
    problems = source_mapping_problems(
        {
            "fields": {"a": "nowhere", "b": "company.color", "c": "attributes.ok"},
            "url_kinds": [["/pricing", "shopping"]],
            "form_kinds": {"dl": "document_download", "x": "nap"},
            "extra": 1,
        }
    )

    assert problems == [
        "Unknown key “extra”.",
        "fields.a: “nowhere” is not a target.",
        "fields.b: “company.color” is not a target.",
        "url_kinds: “shopping” is not an event kind.",
        "form_kinds.x: “nap” is not an event kind.",
    ]


def test_a_mapping_with_a_nul_character_is_refused():
    # PostgreSQL's jsonb cannot store it: saving the source in the admin was a 500.
    problem = "The mapping contains a NUL character (\\u0000), which the database cannot store."

    assert source_mapping_problems({"fields": {"mail\u0000": "email"}}) == [problem]
    assert source_mapping_problems({"url_kinds": [["/p\u0000", "page_view"]]}) == [problem]
    source = Source(kind="generic", slug="x", secret="s", mapping={"fields": {"a\u0000": "email"}})
    with pytest.raises(ValidationError) as refused:
        source.clean()
    assert refused.value.message_dict == {"mapping": [problem]}


def test_every_default_mapping_is_valid():
    for kind in ("generic", "mautic", "hubspot", "marketo"):
        assert source_mapping_problems(source_mapping_default(kind)) == [], kind


def test_source_clean_refuses_a_bad_mapping():
    source = Source(kind="generic", slug="x", secret="s", mapping={"fields": {"a": "b"}})

    with pytest.raises(ValidationError) as raised:
        source.full_clean()

    assert raised.value.message_dict == {"mapping": ["fields.a: “b” is not a target."]}


def test_lead_data_from_fields_splits_names_and_derives_prefecture_and_role():
    data = lead_data_from_fields(
        source_mapping_default("generic"),
        {
            "email": "ＴＡＲＯ@Example.JP",
            "name": "山田 太郎",
            "title": "代表取締役社長",
            "address": "〒100-0005 東京都千代田区丸の内1-1",
            "annual_revenue": "12億円",
            "utm_source": "newsletter",
        },
    )

    assert data.email == "taro@example.jp"
    assert data.attributes == {
        "last_name": "山田",
        "first_name": "太郎",
        "job_title": "代表取締役社長",
        "role": "executive",
        "address": "〒100-0005 東京都千代田区丸の内1-1",
        "utm_source": "newsletter",
    }
    assert data.company == {"revenue_band": "1b_10b", "prefecture": "東京都"}


@pytest.mark.parametrize(
    ("title", "role"),
    [
        ("Director of Sales", "director"),
        ("CTO", "executive"),
        ("情報システム部 課長", "manager"),
        ("主任", "staff"),
        ("部長代理", "director"),
        ("Engineer", "staff"),
        ("顧問", "other"),
    ],
)
def test_role_from_title(title, role):
    assert role_from_title(title) == role


@pytest.mark.parametrize(
    ("text", "industry"),
    [
        ("製造業", "manufacturing"),
        ("情報通信業", "it"),
        ("IT", "it"),
        ("Digital agency", "other"),
        ("銀行", "finance"),
        ("", ""),
    ],
)
def test_industry_from_text(text, industry):
    assert industry_from_text(text) == industry


def test_small_parsers():
    assert parse_count("１，２００名") == 1200
    assert parse_count("100～499") == 100
    assert revenue_band_from_amount(50_000_000) == "under_100m"
    assert revenue_band_from_amount("3000億") == "over_100b"
    assert split_full_name("Taro Yamada") == ("Yamada", "Taro")
    assert split_full_name("山田太郎") == ("山田太郎", "")
    with pytest.raises(ValueProblem):
        parse_count("many")


def test_scoring_sees_each_touched_lead_and_only_new_events(client, monkeypatch):
    seen: list[tuple[str, bool, bool, list[str]]] = []

    def score(*, lead, events, attributes_changed, lead_created, apply_policy):
        # An event's MQL follows it at once, in its transaction: never deferred to a wave.
        assert apply_policy is True
        seen.append((lead.email, attributes_changed, lead_created, [e.kind for e in events]))

    monkeypatch.setattr(services, "lead_score_changes", score)
    source = make_source("generic")
    event = {
        "id": "e1",
        "type": "seminar_attendance",
        "occurred_at": "2026-01-15T10:00:00+09:00",
        "lead": {"email": "a@example.jp", "last_name": "山田"},
    }

    deliver(client, source, event)
    deliver(client, source, {"events": [event, {**event, "id": "e2"}]})

    assert seen == [
        ("a@example.jp", True, True, ["seminar_attendance"]),
        ("a@example.jp", False, False, []),  # evt e1 again: nothing new to score
        ("a@example.jp", False, False, ["seminar_attendance"]),
    ]


# --- admin -----------------------------------------------------------------------------


@pytest.fixture
def superuser_client(client, admin_pages):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_inbound_list_filters_by_status_and_searches(superuser_client):
    source = make_source("generic")
    deliver(superuser_client, source, {"lead": {"email": "ok@example.jp"}})
    failed = deliver(superuser_client, source, {"lead": {"name": "no email"}})

    response = superuser_client.get(
        "/admin/integrations/inboundevent/", {"status__exact": "failed", "q": "no email"}
    )

    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [failed.pk]


def test_inbound_list_costs_the_same_queries_for_1_or_20_events(superuser_client):
    source = make_source("generic")

    def make(n: int) -> None:
        InboundEvent.objects.bulk_create(
            InboundEvent(
                source=source,
                body="{}",
                dedup_key=f"k-{n}-{i}",
                status=InboundStatus.FAILED,
                result={"applied": 2, "failed": 1, "skipped": 0, "errors": [{"reason": "x"}]},
            )
            for i in range(n)
        )

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = superuser_client.get("/admin/integrations/inboundevent/")
        assert response.status_code == 200
        assert "2 applied, 1 failed, 0 skipped" in response.content.decode()
        return len(captured)

    make(1)
    one = queries()
    make(19)
    assert queries() == one


def test_inbound_detail_and_raw_body(superuser_client):
    source = make_source("generic")
    body = '{"lead": {"email": "a@example.jp", "note": "\\u3042"}}'
    inbound = deliver(superuser_client, source, body)

    detail = superuser_client.get(f"/admin/integrations/inboundevent/{inbound.pk}/change/")
    raw = superuser_client.get(f"/admin/integrations/inboundevent/{inbound.pk}/raw/")

    assert detail.status_code == 200
    assert "あ" in detail.content.decode()
    assert raw.status_code == 200
    assert raw.content == body.encode()
    assert raw["Content-Type"] == "text/plain; charset=utf-8"


def test_reprocess_action_requeues_failed_events_only(superuser_client, monkeypatch):
    enqueued: list[int] = []
    monkeypatch.setattr(services, "_enqueue", enqueued.append)
    source = make_source("generic")
    ok = deliver(superuser_client, source, {"lead": {"email": "ok@example.jp"}})
    failed = deliver(superuser_client, source, {"lead": {"mail": "x@example.jp"}})

    response = superuser_client.post(
        "/admin/integrations/inboundevent/",
        {"action": "reprocess", "_selected_action": [ok.pk, failed.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert InboundEvent.objects.get(pk=failed.pk).status == InboundStatus.RECEIVED
    assert InboundEvent.objects.get(pk=ok.pk).status == InboundStatus.PROCESSED
    messages = [str(m) for m in response.context["messages"]]
    assert "Queued 1 event for processing." in messages
    assert "1 event was not failed and was left alone." in messages


def test_marketing_can_see_the_inbox_and_reprocess():
    sync_roles()
    marketer = UserFactory(roles=[MARKETING], is_staff=True)

    assert (
        Group.objects.get(name=MARKETING)
        .permissions.filter(codename="reprocess_inboundevent")
        .exists()
    )
    assert marketer.has_perm("integrations.view_inboundevent")
    assert marketer.has_perm("integrations.reprocess_inboundevent")


def test_source_admin_adds_a_source_with_default_mapping(superuser_client):
    response = superuser_client.post(
        "/admin/integrations/source/add/",
        {
            "kind": "hubspot",
            "slug": "hubspot-portal",
            "name": "",
            "enabled": "on",
            "secret": "client-secret",
            "previous_secret": "",
            "mapping": "{}",
            "rate_limit_per_minute": "600",
            "id_system": "",
        },
    )

    assert response.status_code == 302, response.content
    source = Source.objects.get(slug="hubspot-portal")
    assert source.mapping == source_mapping_default("hubspot")
    listing = superuser_client.get("/admin/integrations/source/")
    assert "http://127.0.0.1:8000/api/v1/intake/hubspot-portal/" in listing.content.decode()


def test_events_reach_leads_only_through_the_services(client):
    # Sanity of the whole path: a generic batch makes leads and events with its source.
    source = make_source("generic")
    response = post(
        client,
        source,
        [
            {"type": "email_click", "occurred_at": 1768438800, "lead": {"email": "a@example.jp"}},
            {"type": "email_open", "occurred_at": 1768438800, "lead": {"email": "b@example.jp"}},
        ],
    )
    from integrations.tasks import process_inbound_event

    process_inbound_event(response.json()["id"])

    assert sorted(Lead.objects.values_list("email", "source")) == [
        ("a@example.jp", "generic-test"),
        ("b@example.jp", "generic-test"),
    ]
    assert EngagementEvent.objects.filter(source="generic-test").count() == 2


def test_inbound_page_title_reads_in_the_users_language(superuser_client):
    source = make_source("generic")
    failed = deliver(superuser_client, source, {"lead": {"name": "no email"}})

    response = superuser_client.get(
        f"/admin/integrations/inboundevent/{failed.pk}/change/", HTTP_ACCEPT_LANGUAGE="ja"
    )

    assert f"<h2>#{failed.pk} 失敗</h2>" in response.text
    assert f"#{failed.pk} {source.pk} failed" not in response.text
