"""The studios' shared draft-only inline reads one "draft" value for both kinds of draft."""

from handoff.plan_models import PlanStatus
from leadflow.admin_inlines import DRAFT
from scoring.models import ModelStatus


def test_scoring_models_and_routing_plans_name_their_draft_state_alike():
    assert DRAFT == ModelStatus.DRAFT == PlanStatus.DRAFT == "draft"
