"""The MQL waves in the admin: read-only for everyone, counted in one query whatever the
number of waves, linked to their handoffs in the list (?wave=)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.urls import reverse

from handoff.models import Handoff
from leadflow.models import MqlWave, WaveKind
from leadflow.roles import MARKETING, SALES_MANAGER, SALES_REP, sync_roles
from tests.factories import LeadFactory, UserFactory
from tests.handoff.helpers import make_team, make_wave, set_profile

TOKYO = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO)

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def _staff(role: str):
    sync_roles()
    return UserFactory(username=role.replace(" ", "-"), roles=[role], is_staff=True)


def _waves(n: int) -> list[MqlWave]:
    """Kanto's rep with room for one; `n` waves of three MQLs each: the first wave's first
    MQL goes to the rep, every other one is held."""
    _team, (rep,), _boss = make_team("Kanto", reps=1, default=True)
    set_profile(rep, max_open_handoffs=1)
    waves = []
    with time_machine.travel(NOW, tick=False):
        for number in range(n):
            leads = sorted(LeadFactory.create_batch(3), key=lambda lead: lead.pk)
            waves.append(make_wave(leads, key=f"rescore:{number}", label=f"Model v{number + 2}"))
    return waves


def _row(body: str, wave: MqlWave) -> str:
    start = body.index(f'href="/admin/leadflow/mqlwave/{wave.pk}/change/')
    row_start = body.rindex("<tr", 0, start)
    return body[row_start : body.index("</tr>", start)]


def _cells(row: str) -> list[str]:
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]


def test_the_changelist_counts_each_waves_mqls_where_they_are_now(root):
    first, second = _waves(2)
    # One of the first wave's held MQLs left on a hand-raise (handoff.waves).
    released = Handoff.objects.filter(wave=first, assigned_to__isnull=True).order_by("pk").first()
    Handoff.objects.filter(pk=released.pk).update(wave_released_at=NOW)

    body = root.get(reverse("admin:leadflow_mqlwave_changelist")).content.decode()

    # started, cause, what, MQLs, assigned at once, with a rep now, held, left, finished
    assert _cells(_row(body, first))[0:8] == [
        "Nov. 2, 2026, 10 a.m.",
        "Scoring model published",
        "Model v2",
        "3",
        "1",
        "1",
        "1",
        "1",
    ]
    assert _cells(_row(body, second))[3:8] == ["3", "0", "0", "3", "0"]


@pytest.mark.parametrize("count", [1, 5])
def test_the_changelist_costs_the_same_queries_for_one_wave_or_five(
    root, count, django_assert_num_queries
):
    _waves(count)
    # Session, user, the changelist's two counts (plain counts of waves: no join to the
    # handoffs), the two singleton settings the admin's navigation checks, the page of
    # rows with its counts as subqueries, the date hierarchy's range and days.
    with django_assert_num_queries(9):
        response = root.get(reverse("admin:leadflow_mqlwave_changelist"))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == count


def test_the_detail_shows_the_counts_and_links_to_the_waves_handoffs(root):
    (wave,) = _waves(1)

    body = root.get(reverse("admin:leadflow_mqlwave_change", args=[wave.pk])).content.decode()

    assert f'href="/inbox/list/?wave={wave.pk}">all its MQLs</a>' in body
    assert f'href="/inbox/list/?wave={wave.pk}&amp;status=open&amp;queued=true"' in body
    assert "Still held in the queue" in body
    assert 'name="_save"' not in body  # nothing to save: read-only


def test_nobody_adds_changes_or_deletes_a_wave_not_even_a_superuser(root):
    (wave,) = _waves(1)
    change = reverse("admin:leadflow_mqlwave_change", args=[wave.pk])

    assert root.get(reverse("admin:leadflow_mqlwave_add")).status_code == 403
    assert root.post(change, {"label": "renamed", "kind": WaveKind.IMPORT}).status_code == 403
    delete = reverse("admin:leadflow_mqlwave_delete", args=[wave.pk])
    assert root.post(delete, {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [wave.pk], "post": "yes"}
    root.post(reverse("admin:leadflow_mqlwave_changelist"), bulk)
    wave.refresh_from_db()
    assert (wave.label, wave.kind) == ("Model v2", WaveKind.PUBLISH)
    assert MqlWave.objects.count() == 1


@pytest.mark.parametrize("role", [MARKETING, SALES_MANAGER])
def test_view_only_staff_read_the_waves_and_change_nothing(client, role):
    (wave,) = _waves(1)
    user = _staff(role)
    assert user.has_perm("leadflow.view_mqlwave")
    assert not user.has_perm("leadflow.change_mqlwave")
    client.force_login(user)

    assert client.get(reverse("admin:leadflow_mqlwave_changelist")).status_code == 200
    page = client.get(reverse("admin:leadflow_mqlwave_change", args=[wave.pk]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.get(reverse("admin:leadflow_mqlwave_add")).status_code == 403
    delete = reverse("admin:leadflow_mqlwave_delete", args=[wave.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert MqlWave.objects.filter(pk=wave.pk).exists()


def test_a_rep_and_staff_without_the_view_permission_do_not_see_the_waves(client):
    (wave,) = _waves(1)
    rep = _staff(SALES_REP)
    assert not rep.has_perm("leadflow.view_mqlwave")
    client.force_login(rep)

    assert client.get(reverse("admin:leadflow_mqlwave_changelist")).status_code == 403
    change = reverse("admin:leadflow_mqlwave_change", args=[wave.pk])
    assert client.get(change).status_code == 403
    rep.user_permissions.add(Permission.objects.get(codename="view_mqlwave"))
    assert client.get(change).status_code == 200


def test_the_handoff_list_filters_by_wave(client):
    first, second = _waves(2)
    manager = UserFactory(username="boss", is_superuser=True)
    client.force_login(manager)

    page = client.get("/inbox/list/", {"wave": second.pk, "sort": "newest"})
    queued = client.get("/inbox/list/", {"wave": first.pk, "status": "open", "queued": "true"})
    api = client.get("/api/v1/handoffs/", {"wave": second.pk}).json()

    in_second = sorted(Handoff.objects.filter(wave=second).values_list("pk", flat=True))
    assert sorted(h.pk for h in page.context["rows"]) == in_second
    assert "MQL wave: Model v3" in page.content.decode()
    assert f'<input type="hidden" name="wave" value="{second.pk}">' in page.content.decode()
    assert sorted(h.pk for h in queued.context["rows"]) == sorted(
        Handoff.objects.filter(wave=first, assigned_to__isnull=True).values_list("pk", flat=True)
    )
    assert sorted(row["id"] for row in api["results"]) == in_second
    assert client.get("/inbox/list/", {"wave": "x"}).status_code == 400


def test_a_publishs_wave_is_labelled_in_the_sites_language_not_the_publishers(settings):
    from django.utils import translation

    from scoring.services import scoring_model_publish
    from tests.scoring.conftest import make_model

    settings.LANGUAGE_CODE = "ja"
    model = make_model(engagement=[{"kind": "email_click", "points": 60}])
    with translation.override("en"):  # the marketer reads the admin in English
        run = scoring_model_publish(model=model)

    assert MqlWave.objects.get(key=f"rescore:{run.pk}").label == (
        f"スコアリングモデル v{model.version} の公開"
    )
