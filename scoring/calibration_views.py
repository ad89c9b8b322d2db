"""The calibration page of a scoring model in the admin: calibration on the customer's own
outcomes (grid and deciles), the MQL threshold's precision and recall, the threshold
explorer (an htmx partial), and sales' verdicts per engagement rule with the suggestions
a marketer may accept into a draft. URLs hang under the scoring model's admin."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from leadflow.errors import DomainError
from leadflow.models import User
from scoring import selectors, services
from scoring.calibration import MIN_GROUP, Calibration, calibration_for, explorer_data
from scoring.models import ModelStatus, PreviewRun, PreviewStatus, ScoringModel
from scoring.suggestions import feedback_for

# Thresholds a person may type into the explorer; beyond them nothing is ever scored.
THRESHOLD_RANGE = (-1000, 10000)


def calibration_urls(model_admin) -> list:
    wrap = model_admin.admin_site.admin_view
    return [
        path(
            "<int:pk>/calibration/",
            wrap(lambda request, pk: calibration_view(model_admin, request, pk)),
            name="scoring_scoringmodel_calibration",
        ),
        path(
            "<int:pk>/calibration/explorer/",
            wrap(lambda request, pk: explorer_view(model_admin, request, pk)),
            name="scoring_scoringmodel_explorer",
        ),
        path(
            "<int:pk>/calibration/accept/",
            wrap(require_POST(lambda request, pk: accept_view(model_admin, request, pk))),
            name="scoring_scoringmodel_accept_suggestion",
        ),
    ]


class BadInput(Exception):
    def __init__(self, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


# The explorer's form field a 400 is about; scoring-calibration.js marks it invalid.
ERROR_FIELD_HEADER = "X-Error-Field"


def _bad_request(error: BadInput) -> HttpResponse:
    # Plain text: a plain GET of the form shows it as it is, and on the calibration page
    # scoring-calibration.js puts it in the explorer form's error line (htmx swaps no 4xx).
    response = HttpResponse(
        f"{error.code}: {error.message}", status=400, content_type="text/plain; charset=utf-8"
    )
    if error.field:
        response[ERROR_FIELD_HEADER] = error.field
    return response


def _int_param(request: HttpRequest, name: str, default: int, *, bounded: bool = True) -> int:
    raw = request.GET.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(
            "invalid_threshold",
            _("“%(value)s” is not a whole number.") % {"value": raw[:20]},
            name,
        ) from None
    low, high = THRESHOLD_RANGE
    if bounded and not low <= value <= high:
        raise BadInput(
            "invalid_threshold",
            _("A threshold must be between %(low)s and %(high)s.") % {"low": low, "high": high},
            name,
        )
    return value


def _viewable(model_admin, request: HttpRequest, pk: int) -> ScoringModel:
    model = get_object_or_404(ScoringModel, pk=pk)
    if not model_admin.has_view_permission(request, model):
        raise PermissionDenied
    return model


def _published() -> ScoringModel | None:
    return ScoringModel.objects.filter(status=ModelStatus.PUBLISHED).first()


def _explorer_context(
    original: ScoringModel, calibration: Calibration, fit: int, engagement: int, choices
) -> dict:
    data = explorer_data(calibration, fit, engagement)
    over_e = calibration.curve_over_engagement(fit, engagement)
    over_f = calibration.curve_over_fit(fit, engagement)
    return {
        "original": original,
        "explored": calibration,
        "point": calibration.point(fit, engagement),
        "explorer_tables": [
            (_("By engagement threshold, at fit ≥ %(fit)s") % {"fit": fit}, "engagement", over_e),
            (_("By fit threshold, at engagement ≥ %(e)s") % {"e": engagement}, "fit", over_f),
        ],
        "explorer_data": data,
        "model_choices": choices,
        "min_group": MIN_GROUP,
    }


def _model_choices(original: ScoringModel, published: ScoringModel | None):
    choices = [original]
    if published is not None and published.pk != original.pk:
        choices.insert(0, published)
    return choices


def _stored_run(model_admin, request: HttpRequest, original: ScoringModel, *, start: bool):
    """The preview run whose stored scores the figures are read from: a draft's job for
    the draft as it is now (`start`: started if there is none, and run here and now on a
    small database, as the preview page does; it may still be going), or, for a
    published model, the latest finished job that compared a draft with it."""
    if original.is_draft and start:
        return model_admin._preview_run(request, original)
    return selectors.preview_run_scored(model=original)


def _readable(run: PreviewRun | None) -> bool:
    """Whether the figures can be given: read from a finished run's stored rows, or, with
    no run (a published model no draft was previewed against), scored here on a small
    database only: a million handoffs are not scored inside a request."""
    if run is not None:
        return run.status == PreviewStatus.DONE
    return selectors.preview_fits_inline()


def _calibration(model: ScoringModel, run: PreviewRun | None) -> Calibration | None:
    return calibration_for(model, run=run) if _readable(run) else None


def calibration_view(model_admin, request: HttpRequest, pk: int) -> HttpResponse:
    original = _viewable(model_admin, request, pk)
    published = _published()
    run = _stored_run(model_admin, request, original, start=True)
    mine = _calibration(original, run)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": ScoringModel._meta,
        "original": original,
        "title": _("Calibration of v%(v)s on sales' verdicts") % {"v": original.version},
        "run": run,
    }
    if mine is None:
        # The job is going (the progress panel reloads the page when it is done), or a
        # published model waits for a draft's preview to be scored against.
        return TemplateResponse(request, "admin/scoring/scoringmodel/calibration.html", context)
    columns = [(original, mine)]
    theirs = _calibration(published, run) if published and published.pk != original.pk else None
    if published is not None and theirs is not None:
        columns.insert(0, (published, theirs))
    # From the same rows as `mine` (scored here only where `mine` was too).
    feedback = feedback_for(original, run=run)
    choices = _model_choices(original, published)
    context |= {
        "columns": columns,
        "calibration": mine,
        "feedback": feedback,
        "reason_lines": feedback.all.reason_lines(feedback.reason_labels),
        "rules": [
            (item, item.scored.reason_lines(feedback.reason_labels)) for item in feedback.rules
        ],
        "can_accept": (
            model_admin.has_change_permission(request, original)
            if original.is_draft
            else model_admin.has_add_permission(request)
        ),
        "min_group": MIN_GROUP,
        **_explorer_context(
            original, mine, original.fit_threshold, original.engagement_threshold, choices
        ),
    }
    return TemplateResponse(request, "admin/scoring/scoringmodel/calibration.html", context)


def explorer_view(model_admin, request: HttpRequest, pk: int) -> HttpResponse:
    """The explorer alone (htmx): the chosen model's calibration at other thresholds."""
    original = _viewable(model_admin, request, pk)
    published = _published()
    choices = _model_choices(original, published)
    try:
        wanted = _int_param(request, "model", original.pk, bounded=False)
        chosen = next((m for m in choices if m.pk == wanted), None)
        if chosen is None:
            raise BadInput(
                "unknown_model",
                _("Explore this draft or the published model only."),
                "model",
            )
        fit = _int_param(request, "fit", chosen.fit_threshold)
        engagement = _int_param(request, "engagement", chosen.engagement_threshold)
    except BadInput as error:
        return _bad_request(error)
    calibration = _calibration(chosen, _stored_run(model_admin, request, original, start=False))
    if calibration is None:
        return HttpResponse(
            "preview_not_ready: "
            + _("The preview of this draft is not computed yet; reload the page."),
            status=409,
            content_type="text/plain; charset=utf-8",
        )
    context = _explorer_context(original, calibration, fit, engagement, choices)
    return TemplateResponse(request, "admin/scoring/scoringmodel/_explorer.html", context)


def accept_view(model_admin, request: HttpRequest, pk: int) -> HttpResponse:
    """Accept one suggestion: the rule's new points go into a draft (this one, or a new
    clone of a published model). Nothing else changes and nothing is published."""
    model = _viewable(model_admin, request, pk)
    allowed = (
        model_admin.has_change_permission(request, model)
        if model.is_draft
        else model_admin.has_add_permission(request)
    )
    if not allowed:
        raise PermissionDenied
    try:
        rule_key = str(uuid.UUID(request.POST.get("rule", "")))
    except ValueError:
        return _bad_request(BadInput("invalid_rule", _("No such engagement rule.")))
    try:
        points = int(request.POST.get("points", ""))
    except ValueError:
        return _bad_request(BadInput("invalid_points", _("Points must be a whole number.")))
    actor = request.user if isinstance(request.user, User) else None
    try:
        draft = services.scoring_model_accept_suggestion(
            model=model, rule_key=rule_key, points=points, actor=actor
        )
    except DomainError as error:
        messages.error(request, error.message)
        return HttpResponseRedirect(reverse("admin:scoring_scoringmodel_calibration", args=[pk]))
    messages.success(
        request,
        _(
            "Draft v%(v)s: %(rule)s now gives %(points)s points. Nothing is published; "
            "preview the draft before publishing it."
        )
        % {"v": draft.version, "rule": draft.engagement_rules.get(key=rule_key), "points": points},
    )
    return HttpResponseRedirect(reverse("admin:scoring_scoringmodel_change", args=[draft.pk]))
