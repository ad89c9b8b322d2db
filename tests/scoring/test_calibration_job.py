"""The calibration page and the threshold explorer on the hand-built history of
tests/scoring/test_calibration.py (its figures are worked out there): what the page says
about missing history, and how the explorer refuses bad thresholds."""

from __future__ import annotations

import pytest
from django.urls import reverse

from scoring.services import scoring_model_clone
from tests.scoring.test_calibration import history  # noqa: F401 - fixture


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"fit": "lots"}, "fit", "“lots” is not a whole number."),
        ({"engagement": "99999"}, "engagement", "A threshold must be between -1000 and 10000."),
        ({"model": "999999"}, "model", "Explore this draft or the published model only."),
    ],
)
def test_the_explorer_refuses_bad_thresholds_naming_the_field(
    client,
    marketer,
    history,  # noqa: F811
    params,
    field,
    message,
):
    client.force_login(marketer)
    draft = scoring_model_clone(source=history)
    url = reverse("admin:scoring_scoringmodel_explorer", args=[draft.pk])

    bad = client.get(url, params)

    assert bad.status_code == 400
    assert bad["X-Error-Field"] == field
    assert bad.content.decode().split(": ", 1)[1] == message


@pytest.mark.django_db
def test_the_explorer_panel_has_the_line_its_script_writes_a_refusal_to(
    client,
    marketer,
    history,  # noqa: F811
):
    client.force_login(marketer)
    draft = scoring_model_clone(source=history)

    page = client.get(reverse("admin:scoring_scoringmodel_calibration", args=[draft.pk]))

    body = page.content.decode()
    assert '<p class="errornote" id="explorer-error" role="alert" hidden></p>' in body
    assert body.count('id="explorer-error"') == 1
    assert "<script>" not in body  # the CSP: behaviour lives in scoring-calibration.js
