"""Who may see and change what: every page and API endpoint × every role, in one table.

Roles: anonymous, marketing, rep A, rep B (another team), the manager of A's team, the
manager of B's team, and a superuser. The world is built once per row: rep A owns lead A
and its open handoff (plus an accepted one, for the deal stages), rep B owns lead B.

Reading a row: `expect(...)` gives the status each role gets, and with `probe` whether
A's data shows in the answer (`sees`). Mutating rows take a `snapshot` of what the
request would change; `changed`/`unchanged` say whether it must differ afterwards, so a
refused request is also proven to have done nothing. Each role runs inside a savepoint
that is rolled back, so one role's change never shows up for the next.

Adding an endpoint (e.g. the SLA dashboard, /api/v1/metrics/): add a row per method
below. `test_every_route_is_in_the_matrix` fails until you do, and names the route.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token

from handoff import verdicts as handoff_verdicts
from handoff.models import (
    Activity,
    Handoff,
    HandoffClaim,
    RejectionReason,
    RepProfile,
    RoutingRule,
    TeamMembership,
)
from integrations.outbound.models import Destination, DestinationKind
from integrations.services import source_create
from leadflow.models import Lead
from leadflow.roles import MARKETING
from leadflow.services import heartbeat_record
from privacy.models import ErasureRequest
from scoring.models import LeadScore, ScoringModel
from sla.kpis.days import kpi_days_refresh_all
from tests.factories import CompanyFactory, LeadFactory, UserFactory
from tests.handoff.helpers import make_mql, make_team

ANON, MKT, REP_A, REP_B, MGR, OTHER_MGR, ADMIN = ROLES = (
    "anonymous",
    "marketing",
    "rep_a",
    "rep_b",
    "manager",
    "other_manager",
    "admin",
)


@dataclass(frozen=True)
class Expect:
    status: int
    sees: bool | None = None  # does A's data (the row's probe) appear in the body?
    changed: bool | None = None  # must the row's snapshot differ afterwards?


def expect(default: int | Expect | None = None, **roles: int | Expect) -> dict[str, Expect]:
    """Per-role expectations; `default` for every role not named."""
    table: dict[str, Expect] = {}
    for role in ROLES:
        value = roles.get(role, default)
        if value is None:
            raise ValueError(f"no expectation for {role}")
        table[role] = value if isinstance(value, Expect) else Expect(value)
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")
    return table


def sees(status: int = 200) -> Expect:
    return Expect(status, sees=True)


def blind(status: int = 200) -> Expect:
    return Expect(status, sees=False)


def changed(status: int) -> Expect:
    return Expect(status, changed=True)


def unchanged(status: int) -> Expect:
    return Expect(status, changed=False)


@dataclass
class World:
    marketing: Any
    rep_a: Any
    rep_a2: Any
    rep_b: Any
    manager: Any
    other_manager: Any
    admin: Any
    team_a: Any
    lead_a: Lead
    lead_b: Lead
    lead_spare: Lead
    handoff_a: Handoff
    handoff_a_sql: Handoff
    handoff_b: Handoff
    token_a: Token
    erasure: ErasureRequest
    users: dict[str, Any] = field(default_factory=dict)


def build_world() -> World:
    heartbeat_record(name="beat")  # a running installation: beat ticks, /readyz is 200
    team_a, (rep_a,), manager = make_team("Kanto", reps=1, default=True, prefix="a")
    team_b, (rep_b,), other_manager = make_team("Kansai", reps=1, prefix="b")
    RoutingRule.objects.create(name="Kansai", prefectures=["大阪府"], team=team_b)
    handoff_a = make_mql(email="person-a@example.jp", last_name="安藤")
    handoff_a_sql = make_mql(email="person-a-sql@example.jp")
    handoff_b = make_mql(email="person-b@example.jp", company=CompanyFactory(prefecture="大阪府"))
    assert handoff_a.assigned_to == rep_a and handoff_b.assigned_to == rep_b
    handoff_verdicts.handoff_accept(
        handoff=handoff_a_sql, actor=rep_a, bant={"budget": True, "need": True}
    )
    # Joins after the handoffs were routed: someone the manager can reassign A's to.
    rep_a2 = UserFactory(username="a-rep2", roles=["Sales rep"])
    TeamMembership.objects.create(team=team_a, rep=rep_a2)
    model = ScoringModel.objects.filter(status="published").first()
    assert model is not None, "the default scoring model comes with the migrations"
    LeadScore.objects.update_or_create(
        lead=handoff_a.lead, defaults={"model": model, "fit": 40, "engagement": 60}
    )
    kpi_days_refresh_all()  # the dashboard's per-day sums, as beat keeps them
    world = World(
        marketing=UserFactory(username="mkt", roles=[MARKETING]),
        rep_a=rep_a,
        rep_a2=rep_a2,
        rep_b=rep_b,
        manager=manager,
        other_manager=other_manager,
        admin=UserFactory(username="root", is_superuser=True, is_staff=True),
        team_a=team_a,
        lead_a=Lead.objects.get(pk=handoff_a.lead_id),
        lead_b=Lead.objects.get(pk=handoff_b.lead_id),
        lead_spare=LeadFactory(email="spare@example.jp"),
        handoff_a=handoff_a,
        handoff_a_sql=handoff_a_sql,
        handoff_b=handoff_b,
        token_a=Token.objects.create(user=rep_a),
        erasure=ErasureRequest.objects.create(requested_by="ticket 1", counts={}),
    )
    world.users = {
        ANON: None,
        MKT: world.marketing,
        REP_A: rep_a,
        REP_B: rep_b,
        MGR: manager,
        OTHER_MGR: other_manager,
        ADMIN: world.admin,
    }
    source_create(kind="generic", slug="matrix-source", secret="matrix-secret-0123456789")
    Destination.objects.create(
        kind=DestinationKind.WEBHOOK,
        slug="matrix-sfa",
        name="SFA",
        base_url="http://127.0.0.1:9/",
        signing_secret="matrix-signing-secret",
    )
    return world


@dataclass(frozen=True)
class Row:
    name: str  # the URL pattern's name, with its namespace
    method: str
    url: Callable[[World], str]
    expect: dict[str, Expect]
    data: Callable[[World], dict] | None = None
    api: bool = True  # JSON body; pages post form data
    probe: Callable[[World], str] | None = None  # text that only A's data contains
    snapshot: Callable[[World], Any] | None = None

    @property
    def id(self) -> str:
        return f"{self.name}:{self.method}"


def _handoff_status(pk: int) -> Callable[[World], Any]:
    return lambda w: Handoff.objects.filter(pk=pk).values_list("status", "assigned_to_id")[0]


def _a(w: World) -> int:
    return w.handoff_a.pk


# Presets for the common shapes.
PUBLIC = expect(200)
# login_required pages: anonymous is sent to the login page.
EVERY_USER_PAGE = expect(200, anonymous=302)
EVERY_USER_API = expect(200, anonymous=401)
ADMIN_ONLY_API = expect(403, anonymous=401, admin=200)

# Handoff A is rep A's, in the manager's team; marketing reads everything.
A_PAGE_READ = expect(
    200, anonymous=302, rep_b=404, other_manager=404
)  # 404: ids of others' handoffs must not be probed
A_API_READ = expect(200, anonymous=401, rep_b=404, other_manager=404)


# The managers' pages: their teams' per-rep figures (the probe), marketing its side.
DASHBOARD_PAGE = expect(
    anonymous=blind(302),
    marketing=Expect(200),
    rep_a=Expect(403),  # the probe is rep A's own name, in every page's header
    rep_b=blind(403),
    manager=sees(),
    other_manager=blind(),
    admin=sees(),
)


def _act_on_a_page(ok: int = 302) -> dict[str, Expect]:
    """Rep A and their manager (and admins) act; marketing sees but may not (403)."""
    return expect(
        anonymous=unchanged(302),
        marketing=unchanged(403),
        rep_a=changed(ok),
        rep_b=unchanged(404),
        manager=changed(ok),
        other_manager=unchanged(404),
        admin=changed(ok),
    )


def _act_on_a_api(ok: int = 200) -> dict[str, Expect]:
    return expect(
        anonymous=unchanged(401),
        marketing=unchanged(403),
        rep_a=changed(ok),
        rep_b=unchanged(404),
        manager=changed(ok),
        other_manager=unchanged(404),
        admin=changed(ok),
    )


def _manage_a(ok: int, *, anonymous: int) -> dict[str, Expect]:
    """Reassigning is the team manager's: the rep may see it but not hand it on."""
    return expect(
        anonymous=unchanged(anonymous),
        marketing=unchanged(403),
        rep_a=unchanged(403),
        rep_b=unchanged(404),
        manager=changed(ok),
        other_manager=unchanged(404),
        admin=changed(ok),
    )


BANT_FORM = {"budget": "on", "need": "on"}
BANT_JSON = {"bant": {"budget": True, "need": True}}

MATRIX: list[Row] = [
    # --- public and account pages -------------------------------------------------------
    Row("home", "GET", lambda w: "/", PUBLIC, api=False),
    Row("healthz", "GET", lambda w: "/healthz", PUBLIC),
    Row("readyz", "GET", lambda w: "/readyz", PUBLIC),
    # Restricted by network, not by role: the test client calls from 127.0.0.1, which the
    # default METRICS_ALLOWED_NETWORKS admits (tests/ops/test_metrics.py covers the rest).
    Row("metrics", "GET", lambda w: "/metrics", PUBLIC),
    Row("favicon", "GET", lambda w: "/favicon.ico", expect(302), api=False),
    Row("login", "GET", lambda w: "/accounts/login/", PUBLIC, api=False),
    Row(
        "login",
        "POST",
        lambda w: "/accounts/login/",
        PUBLIC,  # wrong password: the form again
        data=lambda w: {"username": "a-rep1", "password": "wrong"},
        api=False,
    ),
    Row("logout", "POST", lambda w: "/accounts/logout/", expect(302), api=False),
    Row("logout", "GET", lambda w: "/accounts/logout/", expect(405), api=False),
    Row(
        "account-token",
        "GET",
        lambda w: "/account/token/",
        # Everyone sees their own token only: just rep A's page shows A's key ending.
        expect(blind(), anonymous=302, rep_a=sees()),
        api=False,
        probe=lambda w: f"…{w.token_a.key[-4:]}",
    ),
    Row(
        "account-token",
        "POST",
        lambda w: "/account/token/",
        # Revoking touches the caller's own token; rep A's survives everyone else's.
        expect(unchanged(302), rep_a=changed(302)),
        data=lambda w: {"action": "revoke"},
        api=False,
        snapshot=lambda w: Token.objects.filter(user=w.rep_a).exists(),
    ),
    Row(
        "account-token-api",
        "GET",
        lambda w: "/api/v1/account/token/",
        expect(blind(), anonymous=401, rep_a=sees()),
        probe=lambda w: f'"last4":"{w.token_a.key[-4:]}"',
    ),
    Row(
        "account-token-api",
        "POST",
        lambda w: "/api/v1/account/token/",
        expect(unchanged(201), anonymous=unchanged(401), rep_a=changed(201)),
        snapshot=lambda w: Token.objects.filter(user=w.rep_a).values_list("key", flat=True)[0],
    ),
    Row(
        "account-token-api",
        "DELETE",
        lambda w: "/api/v1/account/token/",
        expect(unchanged(204), anonymous=unchanged(401), rep_a=changed(204)),
        snapshot=lambda w: Token.objects.filter(user=w.rep_a).exists(),
    ),
    # --- API docs ----------------------------------------------------------------------
    Row("api-schema", "GET", lambda w: "/api/schema/", EVERY_USER_API),
    Row("api-docs", "GET", lambda w: "/api/docs/", EVERY_USER_PAGE, api=False),
    Row("api-root", "GET", lambda w: "/api/v1/", EVERY_USER_API),
    # --- leads -------------------------------------------------------------------------
    Row(
        "lead-list",
        "GET",
        lambda w: "/api/v1/leads/",
        # Marketing and managers read the whole funnel; a rep only their own leads.
        expect(sees(), anonymous=401, rep_b=blind()),
        probe=lambda w: w.lead_a.email,
    ),
    Row(
        "lead-detail",
        "GET",
        lambda w: f"/api/v1/leads/{w.lead_a.pk}/",
        expect(sees(), anonymous=401, rep_b=404),
        probe=lambda w: w.lead_a.email,
    ),
    Row(
        "lead-merge",
        "POST",
        lambda w: "/api/v1/leads/merge/",
        expect(
            unchanged(403),
            anonymous=unchanged(401),
            marketing=changed(200),
            admin=changed(200),
        ),
        data=lambda w: {"lead_ids": [w.lead_a.pk, w.lead_spare.pk]},
        snapshot=lambda w: Lead.objects.filter(pk=w.lead_spare.pk).exists(),
    ),
    Row(
        "scoring:lead-score",
        "GET",
        lambda w: f"/api/v1/leads/{w.lead_a.pk}/score/",
        expect(200, anonymous=401, rep_b=404),
    ),
    # --- webhooks: signed by the sender, whoever is logged in ------------------------------
    Row(
        "integrations:intake",
        "POST",
        lambda w: "/api/v1/intake/matrix-source/",
        expect(401),  # unsigned
        data=lambda w: {"email": "x@example.jp"},
    ),
    Row("integrations:intake", "GET", lambda w: "/api/v1/intake/matrix-source/", expect(405)),
    Row(
        "outbound:feedback",
        "POST",
        lambda w: "/api/v1/feedback/matrix-sfa/",
        expect(401),  # unsigned
        data=lambda w: {"lead": w.lead_a.email, "outcome": "won", "event_id": "e1"},
    ),
    Row("outbound:feedback", "GET", lambda w: "/api/v1/feedback/matrix-sfa/", expect(405)),
    # --- the inbox (pages) ---------------------------------------------------------------
    Row(
        "handoff:inbox",
        "GET",
        lambda w: "/inbox/",
        expect(sees(), anonymous=302, rep_b=blind(), other_manager=blind()),
        api=False,
        probe=lambda w: f'href="/inbox/handoffs/{_a(w)}/"',
    ),
    Row(
        "handoff:list",
        "GET",
        lambda w: "/inbox/list/?view=table",
        expect(sees(), anonymous=302, rep_b=blind(), other_manager=blind()),
        api=False,
        probe=lambda w: f'href="/inbox/handoffs/{_a(w)}/"',
    ),
    Row(
        "handoff:live",
        "GET",
        # Everything since the start of time is new: A's assignment shows to whom it may.
        lambda w: "/inbox/live/?a=0&h=0&t=0",
        expect(sees(), anonymous=302, marketing=blind(), rep_b=blind(), other_manager=blind()),
        api=False,
        probe=lambda w: f'href="/inbox/handoffs/{_a(w)}/"',
    ),
    Row(
        "handoff:bulk-reassign",
        "POST",
        lambda w: "/inbox/bulk-reassign/",
        expect(
            anonymous=unchanged(302),
            marketing=unchanged(403),
            rep_a=unchanged(403),
            rep_b=unchanged(403),
            manager=changed(302),
            # Not in their team: left out of the batch, as if not sent.
            other_manager=unchanged(302),
            admin=changed(302),
        ),
        data=lambda w: {"handoff": [_a(w)], "rep": w.rep_a2.pk, "reason": "holiday cover"},
        api=False,
        snapshot=lambda w: _handoff_status(w.handoff_a.pk)(w),
    ),
    Row(
        "handoff:detail",
        "GET",
        lambda w: f"/inbox/handoffs/{_a(w)}/",
        A_PAGE_READ,
        api=False,
    ),
    Row(
        "handoff:activity-create",
        "POST",
        lambda w: f"/inbox/handoffs/{_a(w)}/activities/",
        _act_on_a_page(),
        data=lambda w: {"kind": "call", "outcome": "reached", "note": "n"},
        api=False,
        snapshot=lambda w: Activity.objects.filter(handoff=w.handoff_a).count(),
    ),
    Row(
        "handoff:accept",
        "POST",
        lambda w: f"/inbox/handoffs/{_a(w)}/accept/",
        _act_on_a_page(),
        data=lambda w: BANT_FORM,
        api=False,
        snapshot=lambda w: _handoff_status(w.handoff_a.pk)(w),
    ),
    # Claim or pass on: handoff A's team requires no claims, so nobody has one to make
    # (the holder and the manager are told so); marketing and strangers cannot act at all.
    Row(
        "handoff:claim",
        "POST",
        lambda w: f"/inbox/handoffs/{_a(w)}/claim/",
        expect(
            anonymous=unchanged(302),
            marketing=unchanged(403),
            rep_a=unchanged(302),
            rep_b=unchanged(404),
            manager=unchanged(302),
            other_manager=unchanged(404),
            admin=unchanged(302),
        ),
        api=False,
        snapshot=lambda w: HandoffClaim.objects.filter(handoff=w.handoff_a).count(),
    ),
    Row(
        "handoff:reject",
        "POST",
        lambda w: f"/inbox/handoffs/{_a(w)}/reject/",
        _act_on_a_page(),
        data=lambda w: {"reason": RejectionReason.objects.get(code="timing").pk, "comment": "c"},
        api=False,
        snapshot=lambda w: _handoff_status(w.handoff_a.pk)(w),
    ),
    Row(
        "handoff:reassign",
        "POST",
        lambda w: f"/inbox/handoffs/{_a(w)}/reassign/",
        _manage_a(302, anonymous=302),
        data=lambda w: {"rep": w.rep_a2.pk, "reason": "holiday"},
        api=False,
        snapshot=lambda w: _handoff_status(w.handoff_a.pk)(w),
    ),
    Row(
        "handoff:stage",
        "POST",
        lambda w: f"/inbox/handoffs/{w.handoff_a_sql.pk}/stage/",
        _act_on_a_page(),
        data=lambda w: {"to": "opportunity", "reason": "deal"},
        api=False,
        snapshot=lambda w: Lead.objects.get(pk=w.handoff_a_sql.lead_id).stage,
    ),
    Row(
        "handoff:team-assign-queue",
        "POST",
        lambda w: f"/inbox/teams/{w.team_a.pk}/assign-queue/",
        # Only the team's managers; to anyone else the team is not there.
        expect(404, anonymous=302, manager=302, admin=302),
        api=False,
    ),
    Row(
        "handoff:availability",
        "POST",
        lambda w: "/inbox/availability/",
        # Reps set their own: rep B posting A's id changes only B. Not a rep: nothing to set.
        expect(
            unchanged(403),
            anonymous=unchanged(302),
            rep_a=changed(302),
            rep_b=unchanged(302),
        ),
        data=lambda w: {"action": "away", "user": w.rep_a.pk, "rep": w.rep_a.pk},
        api=False,
        snapshot=lambda w: RepProfile.objects.filter(user=w.rep_a, away=True).exists(),
    ),
    # --- the handoff API ---------------------------------------------------------------
    Row(
        "handoff:api-my-availability",
        "GET",
        lambda w: "/api/v1/me/availability/",
        expect(403, anonymous=401, rep_a=200, rep_b=200),
    ),
    Row(
        "handoff:api-my-availability",
        "PUT",
        lambda w: "/api/v1/me/availability/",
        expect(
            unchanged(403),
            anonymous=unchanged(401),
            rep_a=changed(200),
            rep_b=unchanged(200),
        ),
        data=lambda w: {"away": True, "user": w.rep_a.pk},
        snapshot=lambda w: RepProfile.objects.filter(user=w.rep_a, away=True).exists(),
    ),
    Row(
        "handoff:api-handoff-list",
        "GET",
        lambda w: "/api/v1/handoffs/",
        expect(sees(), anonymous=401, rep_b=blind(), other_manager=blind()),
        probe=lambda w: w.lead_a.email,
    ),
    Row(
        "handoff:api-handoff-detail",
        "GET",
        lambda w: f"/api/v1/handoffs/{_a(w)}/",
        A_API_READ,
    ),
    Row(
        "handoff:api-handoff-accept",
        "POST",
        lambda w: f"/api/v1/handoffs/{_a(w)}/accept/",
        _act_on_a_api(),
        data=lambda w: BANT_JSON,
        snapshot=lambda w: _handoff_status(w.handoff_a.pk)(w),
    ),
    Row(
        "handoff:api-handoff-reject",
        "POST",
        lambda w: f"/api/v1/handoffs/{_a(w)}/reject/",
        _act_on_a_api(),
        data=lambda w: {"reason": "timing", "comment": "c"},
        snapshot=lambda w: _handoff_status(w.handoff_a.pk)(w),
    ),
    Row(
        "handoff:api-handoff-reassign",
        "POST",
        lambda w: f"/api/v1/handoffs/{_a(w)}/reassign/",
        _manage_a(200, anonymous=401),
        data=lambda w: {"rep": w.rep_a2.pk, "reason": "holiday"},
        snapshot=lambda w: _handoff_status(w.handoff_a.pk)(w),
    ),
    Row(
        "handoff:api-handoff-activities",
        "GET",
        lambda w: f"/api/v1/handoffs/{_a(w)}/activities/",
        A_API_READ,
    ),
    Row(
        "handoff:api-handoff-activities",
        "POST",
        lambda w: f"/api/v1/handoffs/{_a(w)}/activities/",
        _act_on_a_api(201),
        data=lambda w: {"kind": "call", "outcome": "reached"},
        snapshot=lambda w: Activity.objects.filter(handoff=w.handoff_a).count(),
    ),
    Row(
        "handoff:api-handoff-claims",
        "GET",
        lambda w: f"/api/v1/handoffs/{_a(w)}/claims/",
        A_API_READ,
    ),
    Row(
        "handoff:api-handoff-claims",
        "POST",
        lambda w: f"/api/v1/handoffs/{_a(w)}/claims/",
        expect(
            anonymous=unchanged(401),
            marketing=unchanged(403),
            rep_a=unchanged(422),  # nothing to claim: the team requires no claims
            rep_b=unchanged(404),
            manager=unchanged(422),  # not theirs to claim
            other_manager=unchanged(404),
            admin=unchanged(422),
        ),
        snapshot=lambda w: HandoffClaim.objects.filter(handoff=w.handoff_a).count(),
    ),
    # --- SLA dashboard and metrics (managers: their teams; marketing: its side; reps: none) --
    Row(
        "sla:dashboard",
        "GET",
        lambda w: "/dashboard/",
        DASHBOARD_PAGE,
        api=False,
        probe=lambda w: w.rep_a.username,  # the per-rep table of team A
    ),
    Row(
        "sla:speed",
        "GET",
        lambda w: "/dashboard/speed/",
        DASHBOARD_PAGE,
        api=False,
        probe=lambda w: str(w.rep_a),  # the per-rep hops of team A
    ),
    Row(
        "sla:handoff-speed",
        "GET",
        lambda w: f"/inbox/handoffs/{_a(w)}/speed/",
        A_PAGE_READ,
        api=False,
    ),
    Row(
        "sla:export",
        "GET",
        lambda w: "/dashboard/export/reps.csv",
        expect(
            anonymous=blind(302),
            marketing=blind(403),
            rep_a=Expect(403),  # the probe is rep A's own name, in every page's header
            rep_b=blind(403),
            manager=sees(),
            other_manager=blind(),
            admin=sees(),
        ),
        api=False,
        probe=lambda w: w.rep_a.username,
    ),
    Row(
        "sla:reassign",
        "POST",
        lambda w: f"/dashboard/handoffs/{_a(w)}/reassign/",
        _manage_a(302, anonymous=302),
        data=lambda w: {"rep": w.rep_a2.pk, "reason": "overdue"},
        api=False,
        snapshot=lambda w: _handoff_status(w.handoff_a.pk)(w),
    ),
    *[
        Row(
            f"sla:api-{name}",
            "GET",
            (lambda n: lambda w: f"/api/v1/metrics/{n}/")(name),
            expect(200, anonymous=401, rep_a=403, rep_b=403, **extra),
        )
        for name, extra in [
            ("summary", {}),
            ("weekly", {}),
            ("sources", {}),
            ("rejections", {}),
            ("marketing", {"manager": 403, "other_manager": 403}),  # marketing's side
            ("reps", {"marketing": 403}),
            ("overdue", {"marketing": 403}),
            ("speed", {}),  # marketing gets no per-rep figures and no forecast
            ("claims", {"marketing": 403}),  # per rep, as "reps"
        ]
    ],
    # --- privacy (admins only: no role has these permissions) --------------------------------
    Row("privacy:erasure-list", "GET", lambda w: "/api/v1/privacy/erasures/", ADMIN_ONLY_API),
    Row(
        "privacy:erasure-list",
        "POST",
        lambda w: "/api/v1/privacy/erasures/",
        expect(unchanged(403), anonymous=unchanged(401), admin=changed(201)),
        data=lambda w: {"lead_id": w.lead_a.pk, "requested_by": "ticket 2"},
        snapshot=lambda w: Lead.objects.get(pk=w.lead_a.pk).email,
    ),
    Row(
        "privacy:erasure-detail",
        "GET",
        lambda w: f"/api/v1/privacy/erasures/{w.erasure.pk}/",
        ADMIN_ONLY_API,
    ),
    Row(
        "privacy:export",
        "GET",
        lambda w: f"/api/v1/privacy/export/?lead_id={w.lead_a.pk}",
        expect(blind(403), anonymous=blind(401), admin=sees()),
        probe=lambda w: w.lead_a.email,
    ),
]


def _client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _request(row: Row, client: Client, world: World):
    url = row.url(world)
    data = row.data(world) if row.data else None
    method = getattr(client, row.method.lower())
    if row.method == "GET":
        return method(url)
    if row.api:
        return method(url, data=json.dumps(data or {}), content_type="application/json")
    return method(url, data=data or {})


class _Rollback(Exception):
    pass


def _savepoint():
    """A savepoint each request runs in, rolled back after it, marked as Django's TestCase
    marks its own per-test block: the services under test open durable transactions
    (atomic(durable=True)), which refuse to nest in anything but a test case's block."""
    block = transaction.atomic()
    block._from_testcase = True
    return block


def _run_as(row: Row, role: str, world: World) -> list[str]:
    """Run the row's request as `role` inside a savepoint that is then rolled back."""
    problems: list[str] = []
    wanted = row.expect[role]
    try:
        with _savepoint():
            before = row.snapshot(world) if row.snapshot else None
            response = _request(row, _client_for(world.users[role]), world)
            if response.status_code != wanted.status:
                problems.append(f"{role}: status {response.status_code}, expected {wanted.status}")
            if wanted.status == 401:
                body = response.json()
                if set(body) != {"error"} or "code" not in body["error"]:
                    problems.append(f"{role}: 401 without the error shape: {body}")
            if wanted.sees is not None and row.probe is not None:
                shown = row.probe(world) in response.content.decode(errors="replace")
                if shown != wanted.sees:
                    problems.append(f"{role}: A's data {'missing' if wanted.sees else 'LEAKED'}")
            if wanted.changed is not None and row.snapshot is not None:
                after = row.snapshot(world)
                if (after != before) != wanted.changed:
                    problems.append(
                        f"{role}: {'nothing changed' if wanted.changed else 'CHANGED'} "
                        f"({before!r} → {after!r})"
                    )
            raise _Rollback
    except _Rollback:
        pass
    return problems


@pytest.mark.parametrize("row", MATRIX, ids=lambda row: row.id)
@pytest.mark.django_db
def test_permission_matrix(row: Row):
    world = build_world()
    problems = [problem for role in ROLES for problem in _run_as(row, role, world)]
    assert not problems, f"{row.id}:\n" + "\n".join(problems)


# --- every route must be in the table ------------------------------------------------------

# Routes with their own access control, deliberately not in the matrix:
ALLOWED_UNLISTED_PREFIXES = (
    "admin/",  # Django admin: is_staff + model permissions, tested in each app's admin tests
    "static/",  # static files (whitenoise / staticfiles in DEBUG): public by nature
    "i18n/",  # set_language: switches the caller's own language cookie, nothing else
)


def _routes(patterns, prefix: str = "", namespace: str | None = None):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            name = pattern.name and (f"{namespace}:{pattern.name}" if namespace else pattern.name)
            yield prefix + str(pattern.pattern), name, pattern.callback


def _methods_of(callback) -> set[str]:
    """The HTTP methods a DRF view answers (besides OPTIONS/HEAD); empty for plain views."""
    actions = getattr(callback, "actions", None)
    if actions:  # a viewset route: {"get": "list", "post": "create"}
        return {method.upper() for method in actions if method not in ("options", "head")}
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is not None and hasattr(cls, "http_method_names") and hasattr(cls, "permission_classes"):
        return {
            method.upper()
            for method in cls.http_method_names
            if method not in ("options", "head") and hasattr(cls, method)
        }
    return set()


def test_every_route_is_in_the_matrix():
    covered: dict[str, set[str]] = {}
    for row in MATRIX:
        covered.setdefault(row.name, set()).add(row.method)
    missing = []
    for route, name, callback in _routes(get_resolver().url_patterns):
        if route.startswith(ALLOWED_UNLISTED_PREFIXES):
            continue
        if not name:
            missing.append(f"{route} has no name: name it and add it to MATRIX")
            continue
        if name not in covered:
            missing.append(f"{name} ({route}) is not in MATRIX")
            continue
        for method in sorted(_methods_of(callback) - covered[name]):
            missing.append(f"{name} ({route}) {method} is not in MATRIX")
    assert not missing, "\n".join(sorted(set(missing)))


def test_matrix_names_only_existing_routes():
    names = {name for _route, name, _cb in _routes(get_resolver().url_patterns) if name}
    stale = sorted({row.name for row in MATRIX} - names)
    assert stale == [], f"rows for routes that no longer exist: {stale}"


# --- HEAD answers wherever GET does ---------------------------------------------------------

GET_ROWS = [row for row in MATRIX if row.method == "GET"]


@pytest.mark.parametrize("row", GET_ROWS, ids=lambda row: row.id)
@pytest.mark.django_db
def test_head_answers_with_the_status_of_get(row: Row):
    # Link checkers, uptime monitors and proxies send HEAD; a 405 where GET answers 200
    # reads as a broken page. (The test client drops HEAD bodies itself, as servers do.)
    world = build_world()
    problems = []
    for role in ROLES:
        client = _client_for(world.users[role])
        url = row.url(world)
        with _savepoint():
            got = client.get(url).status_code
            headed = client.head(url)
            transaction.set_rollback(True)
        if headed.status_code != got:
            problems.append(f"{role}: HEAD {headed.status_code}, GET {got}")
    assert not problems, f"{row.id}:\n" + "\n".join(problems)
