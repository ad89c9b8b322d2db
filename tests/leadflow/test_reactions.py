import inspect
import tomllib
from pathlib import Path

import pytest

from leadflow import reactions
from leadflow.lifecycle import ALLOWED
from leadflow.models import Stage

ROOT = Path(__file__).resolve().parents[2]

# The keyword arguments each list's reactions are called with (leadflow.reactions).
KWARGS = {
    "STAGE_CHANGED": {"transition", "lead"},
    "STAGE_CHANGED_BULK": {"transitions", "wave"},
    "HANDOFF_CREATED": {"handoff", "at"},
    "HANDOFFS_CREATED_BULK": {"handoffs", "at"},
    "HAND_RAISED": {"lead", "event"},
    "HANDOFF_RELEASED": {"handoff", "at"},
    "HANDOFF_ASSIGNED": {"handoff", "assignment", "at"},
    "HANDOFFS_ASSIGNED_BULK": {"assignments", "at"},
    "ACTIVITY_LOGGED": {"handoff", "activity"},
    "BEFORE_REJECT": {"handoff", "reason"},
    "HANDOFF_DECIDED": {"handoff", "at"},
    "LEADS_MERGING": {"keep", "merge"},
    "LEADS_MERGED": {"keep", "record"},
    "ROUTING_PLAN_PUBLISHED": {"plan", "at"},
}

calls: list[tuple[str, dict]] = []


def first(**kwargs):
    calls.append(("first", kwargs))


def second(**kwargs):
    calls.append(("second", kwargs))


def refuses(**kwargs):
    raise ValueError("refused")


def test_every_stage_says_what_follows_it():
    assert set(reactions.STAGE_CHANGED) == set(Stage.values)


@pytest.mark.parametrize(("name", "paths"), sorted(reactions.ALL.items()))
def test_every_reaction_resolves_and_takes_exactly_its_lists_arguments(name, paths):
    expected = KWARGS[name.split("[")[0]]
    for path in paths:
        parameters = inspect.signature(reactions.resolve(path)).parameters.values()
        assert {p.name for p in parameters} == expected, path
        assert all(p.kind == p.KEYWORD_ONLY for p in parameters), path


def test_the_won_reaction_sees_every_move_into_or_out_of_won():
    # STAGE_CHANGED is keyed by the stage moved to; the "SQL → won" KPI day must also hear
    # of a move out of won, so every move out of won must land in won again.
    won = {Stage.CUSTOMER, Stage.ADVOCATE}
    for stage in won:
        assert ALLOWED[stage] <= won
        assert "sla.reactions.on_won_stage_changed" in reactions.STAGE_CHANGED[stage]
    for stage in set(Stage.values) - won:
        assert "sla.reactions.on_won_stage_changed" not in reactions.STAGE_CHANGED[stage]


def test_run_calls_in_the_listed_order_and_stops_at_the_first_error():
    calls.clear()
    here = "tests.leadflow.test_reactions"

    reactions.run([f"{here}.second", f"{here}.first"], lead=7)
    assert calls == [("second", {"lead": 7}), ("first", {"lead": 7})]

    calls.clear()
    with pytest.raises(ValueError, match="refused"):
        reactions.run([f"{here}.first", f"{here}.refuses", f"{here}.second"], lead=8)
    assert calls == [("first", {"lead": 8})]


def _forbidden_by_the_reactions_contract() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [
        c
        for c in pyproject["tool"]["importlinter"]["contracts"]
        if c["name"] == "Reactions run only through leadflow.reactions"
    ]
    return contract["forbidden_modules"]


def test_every_reaction_lives_where_the_import_contract_forbids_calling_it():
    # A reaction in an ordinary module (handoff.claims, sla.services) could be called by
    # any service out of its listed order without breaking a contract.
    assert _forbidden_by_the_reactions_contract() == list(reactions.REACTION_MODULES)
    for name, paths in reactions.ALL.items():
        for path in paths:
            assert path.rsplit(".", 1)[0] in reactions.REACTION_MODULES, (name, path)


def test_the_answers_for_handoff_resolve_to_what_handoff_calls():
    hours = reactions.resolve(reactions.WORKING_HOURS)()
    assert callable(hours.starts) and callable(hours.add_working_time)
    assert set(reactions.LIST_CONDITIONS) == {"sla", "kpi"}
    for path in reactions.LIST_CONDITIONS.values():
        parameters = inspect.signature(reactions.resolve(path)).parameters
        assert len(parameters) == 2, path
    labels = reactions.resolve(reactions.KPI_LABELS)
    assert isinstance(labels, dict) and "mqls" in labels


def test_every_bulk_reaction_stands_for_its_single_twin_in_the_same_order():
    for stage, paths in reactions.STAGE_CHANGED_BULK.items():
        assert [reactions.BULK_TWINS[path] for path in paths] == list(
            reactions.STAGE_CHANGED[stage]
        ), stage
    for bulk, single in (
        (reactions.HANDOFFS_CREATED_BULK, reactions.HANDOFF_CREATED),
        (reactions.HANDOFFS_ASSIGNED_BULK, reactions.HANDOFF_ASSIGNED),
    ):
        assert [reactions.BULK_TWINS[path] for path in bulk] == list(single)
