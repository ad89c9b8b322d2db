"""Building blocks for handoff tests: teams of reps and leads that become MQLs for real
(through leadflow.lifecycle, so the signal receiver creates and routes the handoff)."""

from __future__ import annotations

from handoff.models import Handoff, RepProfile, Team, TeamMembership
from leadflow.lifecycle import BulkMove, lead_transition, leads_transition_bulk, mql_wave_start
from leadflow.models import MqlWave, Stage, WaveKind
from leadflow.roles import SALES_MANAGER, SALES_REP
from tests.factories import CompanyFactory, LeadFactory, UserFactory


def make_team(
    name: str = "Kanto",
    *,
    reps: int = 3,
    default: bool = False,
    manager: bool = True,
    prefix: str | None = None,
) -> tuple[Team, list, object | None]:
    team = Team.objects.create(name=name, is_default=default)
    prefix = prefix or name.lower()
    members = []
    for number in range(1, reps + 1):
        rep = UserFactory(username=f"{prefix}-rep{number}", roles=[SALES_REP])
        TeamMembership.objects.create(team=team, rep=rep)
        members.append(rep)
    boss = None
    if manager:
        boss = UserFactory(username=f"{prefix}-manager", roles=[SALES_MANAGER])
        team.managers.add(boss)
    return team, members, boss


def make_mql(*, company=None, **lead_fields) -> Handoff:
    lead = LeadFactory(stage=Stage.KNOWN, company=company or CompanyFactory(), **lead_fields)
    lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")
    return Handoff.objects.select_related("lead", "team", "assigned_to").get(lead=lead)


def set_profile(rep, **fields) -> RepProfile:
    profile, _created = RepProfile.objects.update_or_create(user=rep, defaults=fields)
    return profile


def make_mql_for(rep, others, **lead_fields) -> Handoff:
    """An MQL that the routing gives to `rep`: the other reps are away while it is routed."""
    for other in others:
        set_profile(other, away=True)
    handoff = make_mql(**lead_fields)
    for other in others:
        set_profile(other, away=False)
    assert handoff.assigned_to == rep
    return handoff


def retime(timers, **changes) -> int:
    """Change SLA timers behind the services' back (a test's shortcut to a deadline) and
    store their handoffs' next deadline as sla.services does after every timer change."""
    from sla.services import handoff_next_due_refresh

    handoff_ids = list(timers.values_list("handoff_id", flat=True))
    count = timers.update(**changes)
    handoff_next_due_refresh(handoff_ids=handoff_ids)
    return count


def make_wave(leads, *, key: str = "rescore:1", label: str = "Scoring model v2") -> MqlWave:
    """A publish that makes these known leads MQLs at once (handoff.bulk): above the teams'
    free capacity they wait in the queue."""
    wave = mql_wave_start(kind=WaveKind.PUBLISH, key=key, label=label)
    leads_transition_bulk(
        moves=[BulkMove(lead_id=lead.pk, expected_from=Stage.KNOWN) for lead in leads],
        to_stage=Stage.MQL,
        actor="scoring",
        wave=wave,
    )
    return wave
