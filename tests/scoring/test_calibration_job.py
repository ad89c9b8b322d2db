"""The calibration page and the threshold explorer on the hand-built history of
tests/scoring/test_calibration.py (its figures are worked out there): what the page says
about missing history, and how the explorer refuses bad thresholds."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils.timezone import localtime

from leadflow.models import Lead
from scoring.calibration import calibration_for
from scoring.models import EngagementRule
from scoring.services import preview_run_execute, preview_run_start, scoring_model_clone
from scoring.suggestions import feedback_for
from tests.factories import EngagementEventFactory
from tests.scoring.conftest import T0
from tests.scoring.test_calibration import history, history_built  # noqa: F401 - fixtures

HOUR = dt.timedelta(hours=1)


def _figures(c):
    p = c.current
    return {
        "total": (c.total.leads, c.total.sql, c.total.won, c.total.rejected),
        "handed_over": c.handed_over,
        "missing": c.missing_history,
        "point": (p.mqls, p.true_mqls, p.sql_total),
        "explorer": [(q.fit, q.engagement, q.mqls, q.true_mqls) for q in c.curve_over_fit(0, 0)],
        "deciles": [(d.number, d.low, d.high, d.counts.leads, d.counts.sql) for d in c.deciles()],
        "cells": sorted(
            (x.fit, x.engagement, x.hand_raised, x.decile, x.counts.leads, x.counts.sql)
            for x in c.cells
        ),
    }


@pytest.fixture
def job(history):  # noqa: F811
    """A draft (page views 5 points instead of 10) and its finished preview job."""
    draft = scoring_model_clone(source=history)
    rule = EngagementRule.objects.get(model=draft, kind="page_view")
    rule.points = 5
    rule.save()
    run = preview_run_start(draft=draft, enqueue=False)
    preview_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return history, draft, run


@pytest.mark.django_db
def test_the_calibration_from_the_stored_job_is_the_live_one(job):
    published, draft, run = job

    for model in (published, draft):
        stored = calibration_for(model, run=run)
        assert _figures(stored) == _figures(calibration_for(model))
    # The hand-worked figures of tests/scoring/test_calibration.py: 84 decided of 89
    # handed over, 32 SQL, 12 won, 52 rejected; G5's 4 have no history at handoff.
    p = calibration_for(published, run=run)
    assert (p.total.leads, p.total.sql, p.total.won, p.total.rejected) == (84, 32, 12, 52)
    assert (p.handed_over, p.missing_history) == (89, 4)
    assert (p.current.mqls, p.current.true_mqls) == (60, 30)
    d = calibration_for(draft, run=run)
    assert (d.current.mqls, d.current.true_mqls) == (30, 24)  # only G2 reaches 50


@pytest.mark.django_db
def test_the_stored_calibration_reads_the_jobs_rows_not_the_events(job):
    published, _draft, run = job
    # Three more page views before the handoff of every G3 lead (fit 0): live scoring
    # sees them, the job's rows (its picture as of the run) do not.
    for lead in Lead.objects.filter(email__startswith="g3-"):
        for k in range(3):
            EngagementEventFactory(lead=lead, kind="page_view", occurred_at=T0 + k * HOUR)

    stored = calibration_for(published, run=run)
    live = calibration_for(published)

    assert (stored.missing_history, stored.point(0, 30).mqls) == (4, 60)
    assert live.point(0, 30).mqls == 80  # G3's 20 now have 30 engagement points


def _verdicts(v):
    return (v.leads, v.sql, v.won, v.lost, v.rejected, v.reasons)


def _feedback(f):
    return {
        "all": _verdicts(f.all),
        "rules": [(r.rule.key, _verdicts(r.scored), _verdicts(r.carried)) for r in f.rules],
        "suggestions": [s.text for s in f.suggestions],
    }


@pytest.mark.django_db
def test_the_suggestions_from_the_stored_job_are_the_live_ones(job):
    published, draft, run = job

    for model in (published, draft):
        assert _feedback(feedback_for(model, run=run)) == _feedback(feedback_for(model))
    # The hand-worked figures of tests/scoring/test_calibration.py: G1's page views were
    # rejected as "no budget" 2.1× as often, G2's seminars won 2.8× as often.
    p = feedback_for(published, run=run)
    assert _verdicts(p.all) == (84, 32, 12, 2, 52, {"no_budget": 24, "timing": 28})
    views, seminars = p.rules
    assert _verdicts(views.scored) == (30, 6, 0, 0, 24, {"no_budget": 18, "timing": 6})
    assert _verdicts(seminars.carried) == (30, 24, 12, 2, 6, {"timing": 6})
    assert [(s.kind, s.before, s.after) for s in p.suggestions] == [
        ("lower", 10, 5),
        ("raise", 30, 84),
    ]
    # The draft's page views give 5 points: G1's 6 views make 30, still all of G1's
    # engagement, so the draft's rule is judged on the same 30 leads.
    d = feedback_for(draft, run=run)
    assert [(r.rule.points, r.carried.leads) for r in d.rules] == [(5, 30), (30, 30)]
    assert [(s.kind, s.before, s.after) for s in d.suggestions] == [
        ("lower", 5, 2),
        ("raise", 30, 84),
    ]


@pytest.mark.django_db
def test_the_stored_suggestions_read_the_jobs_rows_not_the_events(job):
    published, _draft, run = job
    # Three page views before the handoff of every G3 lead: live scoring now sees 20
    # more leads with page views; the job's rows (its picture as of the run) do not.
    for lead in Lead.objects.filter(email__startswith="g3-"):
        for k in range(3):
            EngagementEventFactory(lead=lead, kind="page_view", occurred_at=T0 + k * HOUR)

    stored = feedback_for(published, run=run)
    live = feedback_for(published)

    assert (stored.rules[0].scored.leads, live.rules[0].scored.leads) == (30, 50)


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


@pytest.mark.django_db
def test_on_a_large_database_the_page_waits_for_the_job_and_then_reads_it(
    client,
    marketer,
    history,  # noqa: F811
    settings,
    django_capture_on_commit_callbacks,
):
    settings.SCORING_PREVIEW_INLINE_LEADS = 10  # fewer than the history's 92 leads
    client.force_login(marketer)
    draft = scoring_model_clone(source=history)
    url = reverse("admin:scoring_scoringmodel_calibration", args=[draft.pk])
    explorer = reverse("admin:scoring_scoringmodel_explorer", args=[draft.pk])

    with django_capture_on_commit_callbacks() as callbacks:
        waiting = client.get(url)
    too_soon = client.get(explorer, {"fit": "30"})
    published_page = client.get(
        reverse("admin:scoring_scoringmodel_calibration", args=[history.pk])
    )
    run = draft.preview_runs.get()
    preview_run_execute(run_id=run.pk)
    run.refresh_from_db()
    done = client.get(url)
    moved = client.get(explorer, {"model": history.pk, "fit": "30", "engagement": "0"})

    body = waiting.content.decode()
    assert len(callbacks) == 2  # the job, one task per slice; nothing scored here
    assert 'id="preview-progress"' in body and 'hx-trigger="every 2s"' in body
    assert "The figures rest on" not in body
    assert too_soon.status_code == 409
    assert 'id="calibration-no-job"' in published_page.content.decode()
    body = done.content.decode()
    assert f"Read from the preview computed {localtime(run.as_of):%Y-%m-%d %H:%M}." in body
    assert "The figures rest on 84 leads sales has decided on" in body
    assert moved.status_code == 200
    assert "64 of 84 decided leads would have been MQL" in moved.content.decode()
    # Published now has a job scored against it: its page reads the same rows.
    published_again = client.get(
        reverse("admin:scoring_scoringmodel_calibration", args=[history.pk])
    )
    assert "The figures rest on 84 leads" in published_again.content.decode()


@pytest.mark.django_db
def test_each_figure_resting_on_missing_history_says_so_with_the_count(
    client,
    marketer,
    job,
    settings,
):
    """G5's 4 decided leads have their page views only after their handoff."""
    _published, draft, _run = job
    client.force_login(marketer)

    def pages(language):
        settings.LANGUAGE_CODE = language
        headers = {"HTTP_ACCEPT_LANGUAGE": language}
        return [
            client.get(
                reverse(f"admin:scoring_scoringmodel_{name}", args=[draft.pk]), **headers
            ).content.decode()
            for name in ("preview", "calibration")
        ]

    preview, calibration = pages("en")
    ja_preview, ja_calibration = pages("ja")

    # The backtest: 89 handed over, of which G5's 4 have no history at handoff.
    assert (
        '<p class="errornote" id="backtest-missing-history">4 of the 89 leads handed to sales'
        " have events only after their handoff" in preview
    )
    # Under the precision/recall table, and under the explorer's figure.
    table_end = calibration.index("</table>", calibration.index('id="threshold-summary"'))
    warning = calibration.index('id="missing-history"')
    assert table_end < warning < calibration.index("<h2>", table_end)
    assert "4 decided leads have events only after their handoff" in calibration
    assert (
        'id="explorer-missing-history">4 of these decided leads have no events before their'
        " handoff" in calibration
    )
    assert 'id="backtest-missing-history">営業に引き渡した89件のうち4件' in ja_preview
    assert 'id="explorer-missing-history">この判定済みリードのうち4件' in ja_calibration
