"""Calibration figures on leads of their own, apart from the shared hand-built history
of test_calibration.py (which is built once for that module and would be seen here)."""

from __future__ import annotations

import pytest

from leadflow.models import Stage
from scoring.calibration import calibration_for
from scoring.suggestions import feedback_for
from tests.scoring.conftest import T0, make_model
from tests.scoring.test_calibration import _events, _lead, _move


@pytest.mark.django_db
def test_without_decided_leads_every_figure_is_empty(db):
    model = make_model(engagement=[{"kind": "page_view", "points": 10}])
    c = calibration_for(model)
    assert (c.total.leads, c.handed_over, c.current.precision, c.current.recall) == (
        0,
        0,
        None,
        None,
    )
    assert c.deciles() == []
    assert feedback_for(model).suggestions == []


@pytest.mark.django_db
def test_the_hand_raiser_counts_at_every_threshold(db):
    model = make_model(
        fit=[{"field": "role", "operator": "equals", "value": "executive", "points": 40}],
        engagement=[{"kind": "consultation", "points": 5}],
        hand_raiser_kind="consultation",
        hand_raiser_min_fit=20,
    )
    for i, executive in enumerate((True, False)):
        lead = _lead("hr", i, executive=executive)
        _events(lead, "consultation", 1, T0)
        _move(lead, Stage.MQL, 5)
        _move(lead, Stage.SQL, 6)
    c = calibration_for(model)
    # Engagement 5 is under a threshold of 500, but the executive raised a hand with fit
    # 40 ≥ 20, whatever the fit threshold; the staff member (fit 0) did not qualify.
    assert (c.point(30, 500).mqls, c.point(90, 500).mqls, c.point(0, 0).mqls) == (1, 1, 2)
