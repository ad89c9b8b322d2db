"""Building blocks for SLA tests: a team of two reps and a manager, MQLs at given times
(through the real lifecycle, so handoff routes them and sla starts their timers)."""

from __future__ import annotations

import datetime as dt

import pytest

from handoff.models import Handoff
from leadflow.lifecycle import lead_transition
from leadflow.models import Stage
from tests.factories import CompanyFactory, LeadFactory
from tests.handoff.helpers import make_team, set_profile

JST = dt.timezone(dt.timedelta(hours=9))


def at(month, day, hour=0, minute=0, year=2026):
    return dt.datetime(year, month, day, hour, minute, tzinfo=JST)


@pytest.fixture
def kanto(db):
    """Team Kanto (default): reps kanto-rep1 (alice) and kanto-rep2 (bob), kanto-manager."""
    return make_team("Kanto", reps=2, default=True)


def mql(rep, when, *, actor="scoring", source="web", complete=True, **fields) -> Handoff:
    """An MQL at `when` that the routing gives to `rep` (the team's other reps are away)."""
    team = rep.team_memberships.get().team
    others = [m.rep for m in team.memberships.exclude(rep=rep)]
    for other in others:
        set_profile(other, away=True)
    lead = LeadFactory(
        stage=Stage.KNOWN,
        company=CompanyFactory(),
        source=source,
        phone="03-1234-5678" if complete else "",
        job_title="部長" if complete else "",
        **fields,
    )
    lead_transition(lead=lead, to_stage=Stage.MQL, actor=actor, at=when)
    for other in others:
        set_profile(other, away=False)
    handoff = Handoff.objects.select_related("lead", "team", "assigned_to").get(lead=lead)
    assert handoff.assigned_to == rep
    return handoff


@pytest.fixture
def seeded(transactional_db):
    """The rows the data migrations seed (rejection reasons, the SLA policies, the default
    calendar), for transactional tests: the flush after each such test removes them, and
    serialized_rollback clashes with the role groups that post_migrate recreates."""
    from importlib import import_module

    from django.apps import apps

    for module, function in (
        ("handoff.migrations.0002_seed_rejection_reasons", "seed"),
        ("sla.migrations.0002_default_calendar", "create_default_calendar"),
        ("sla.migrations.0004_seed_policies", "seed"),
    ):
        getattr(import_module(module), function)(apps, None)
