"""Marketers' workplace: clone the published model, edit the draft's rules inline,
preview and backtest it, publish it, and watch the rescore run."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from leadflow.admin_inlines import DraftOnlyInline, ReadOnlyAdmin, request_user
from leadflow.errors import DomainError
from scoring import engine, policy, selectors, services
from scoring.calibration_views import calibration_urls
from scoring.models import (
    FIELD_PATHS,
    EngagementRule,
    FitCategory,
    FitRule,
    LeadScore,
    ModelStatus,
    RescoreRun,
    RescoreSlice,
    ScoringModel,
)


class FitCategoryInline(DraftOnlyInline):
    model = FitCategory
    fields = ("position", "name", "min_points", "max_points")


class FieldPathWidget(forms.TextInput):
    """A text box with the known field paths as suggestions (attributes.<key> is free)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.attrs.setdefault("list", "scoring-field-paths")
        self.attrs.setdefault("size", 24)

    def render(self, name, value, attrs=None, renderer=None):
        html = super().render(name, value, attrs, renderer)
        options = format_html_join("", '<option value="{}">', ((p,) for p in FIELD_PATHS))
        return format_html('{}<datalist id="scoring-field-paths">{}</datalist>', html, options)


class FitRuleForm(forms.ModelForm):
    class Meta:
        model = FitRule
        fields = (
            "position",
            "category",
            "label",
            "field",
            "operator",
            "value",
            "min_value",
            "max_value",
            "points",
        )
        widgets = {
            "field": FieldPathWidget(),
            "value": forms.Textarea(attrs={"rows": 1, "cols": 24}),
            "label": forms.TextInput(attrs={"size": 20}),
        }


class FitRuleInline(DraftOnlyInline):
    model = FitRule
    form = FitRuleForm
    readonly_fields = ("condition",)

    # The value box holds codes (10b_100b, kanto); this column reads them as labels.
    @admin.display(description=_("condition"))
    def condition(self, obj: FitRule) -> str:
        return obj.describe() if obj.pk else "—"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "category":
            # Only the categories of the model being edited.
            object_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = FitCategory.objects.filter(model_id=object_id or 0)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class EngagementRuleForm(forms.ModelForm):
    class Meta:
        model = EngagementRule
        fields = (
            "position",
            "label",
            "kind",
            "property_key",
            "operator",
            "value",
            "min_value",
            "max_value",
            "points",
            "cap_points",
            "cap_period",
            "half_life_days",
        )
        widgets = {
            "value": forms.Textarea(attrs={"rows": 1, "cols": 20}),
            "label": forms.TextInput(attrs={"size": 18}),
            "property_key": forms.TextInput(attrs={"size": 8}),
        }


class EngagementRuleInline(DraftOnlyInline):
    model = EngagementRule
    form = EngagementRuleForm


@admin.register(ScoringModel)
class ScoringModelAdmin(admin.ModelAdmin):
    list_display = (
        "version",
        "name",
        "status",
        "mql_policy",
        "fit_rule_count",
        "engagement_rule_count",
        "published_at",
        "updated_at",
    )
    list_display_links = ("version", "name")
    list_filter = ("status", "published_at")
    search_fields = ("name", "notes")
    readonly_fields = ("version", "status", "based_on", "published_at", "archived_at")
    fieldsets = (
        (None, {"fields": ("name", "notes", ("version", "status", "based_on"))}),
        (
            _("MQL policy"),
            {
                "fields": (
                    ("fit_threshold", "engagement_threshold"),
                    ("hand_raiser_kind", "hand_raiser_min_fit"),
                    "recycle_cooldown_days",
                )
            },
        ),
        (_("History"), {"fields": (("published_at", "archived_at"),)}),
    )
    inlines = (FitCategoryInline, FitRuleInline, EngagementRuleInline)
    actions = ("clone_selected",)
    change_form_template = "admin/scoring/scoringmodel/change_form.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_fit=Count("fit_rules", distinct=True),
                n_engagement=Count("engagement_rules", distinct=True),
            )
        )

    @admin.display(description=_("fit rules"), ordering="n_fit")
    def fit_rule_count(self, obj) -> int:
        return obj.n_fit

    @admin.display(description=_("engagement rules"), ordering="n_engagement")
    def engagement_rule_count(self, obj) -> int:
        return obj.n_engagement

    @admin.display(description=_("MQL when"))
    def mql_policy(self, obj: ScoringModel) -> str:
        text = _("fit ≥ %(fit)s and engagement ≥ %(engagement)s") % {
            "fit": obj.fit_threshold,
            "engagement": obj.engagement_threshold,
        }
        if obj.hand_raiser_kind:
            text += " / " + _("%(event)s with fit ≥ %(fit)s") % {
                "event": obj.get_hand_raiser_kind_display(),
                "fit": obj.hand_raiser_min_fit,
            }
        return text

    # Published and archived versions are read-only: scores point at them.
    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status != ModelStatus.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status != ModelStatus.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset.filter(status=ModelStatus.DRAFT):
            obj.delete()

    @admin.action(description=_("Clone as a new draft"), permissions=["add"])
    def clone_selected(self, request, queryset) -> None:
        for source in queryset.order_by("version"):
            draft = services.scoring_model_clone(source=source, actor=request_user(request))
            self.message_user(
                request,
                _("Draft v%(new)s created from v%(old)s.")
                % {"new": draft.version, "old": source.version},
                messages.SUCCESS,
            )

    # --- extra pages: clone, preview, publish ---------------------------------------
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/clone/", wrap(self.clone_view), name="scoring_scoringmodel_clone"),
            path("<int:pk>/preview/", wrap(self.preview_view), name="scoring_scoringmodel_preview"),
            path(
                "<int:pk>/preview/changes/",
                wrap(self.changes_view),
                name="scoring_scoringmodel_changes",
            ),
            path(
                "<int:pk>/preview/progress/",
                wrap(self.preview_progress_view),
                name="scoring_scoringmodel_preview_progress",
            ),
            path("<int:pk>/publish/", wrap(self.publish_view), name="scoring_scoringmodel_publish"),
            *calibration_urls(self),
            *super().get_urls(),
        ]

    def _context(self, request, obj, title) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": obj,
            "title": title,
            "can_publish": obj.is_draft and request.user.has_perm("scoring.publish_scoringmodel"),
        }

    def clone_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        source = get_object_or_404(ScoringModel, pk=pk)
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            draft = services.scoring_model_clone(source=source, actor=request_user(request))
            self.message_user(
                request,
                _("Draft v%(new)s created from v%(old)s. Edit its rules, then preview it.")
                % {"new": draft.version, "old": source.version},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(
                reverse("admin:scoring_scoringmodel_change", args=[draft.pk])
            )
        context = self._context(request, source, _("Clone v%(v)s") % {"v": source.version})
        return TemplateResponse(request, "admin/scoring/scoringmodel/clone.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        draft = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if draft is not None and draft.is_draft:
            extra["diff"] = selectors.scoring_model_diff(draft=draft)
            extra["has_published"] = ScoringModel.objects.filter(
                status=ModelStatus.PUBLISHED
            ).exists()
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def _filters(self, request: HttpRequest) -> dict:
        only = request.GET.get("only", selectors.CHANGED)
        if only != selectors.CHANGED and only not in selectors.OUTCOMES:
            only = selectors.CHANGED
        try:
            page = int(request.GET.get("page", "1"))
        except ValueError:
            page = 1
        return {"only": only, "search": request.GET.get("q", "")[:100], "page": page}

    def _changes_context(self, changes: selectors.ChangesPage) -> dict:
        choices: list[tuple[str, str]] = [
            (selectors.CHANGED, str(_("meet the MQL policy under one model only")))
        ]
        choices += [
            (outcome, _("under the draft: %(outcome)s") % {"outcome": label})
            for outcome, label in selectors.OUTCOME_LABELS.items()
            if outcome is not None
        ]
        return {"changes": changes, "only_choices": choices}

    def _preview_run(self, request: HttpRequest, draft: ScoringModel, fresh: bool = False):
        """The draft's preview job for its current content, started if there is none.
        On a small database (SCORING_PREVIEW_INLINE_LEADS) it runs here and now: the
        same job, done in less time than a page of progress would take."""
        inline = selectors.preview_fits_inline()
        run = services.preview_run_start(
            draft=draft, actor=request_user(request), fresh=fresh, enqueue=not inline
        )
        if inline and run.is_active:
            services.preview_run_execute(run_id=run.pk)
            run.refresh_from_db()
        return run

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The draft's preview: read from its finished job when the draft has not changed
        since (instant), else a progress panel while the job runs (opening the page starts
        it). POST computes it again (the leads and events have moved since)."""
        draft = get_object_or_404(ScoringModel, pk=pk)
        if not self.has_view_permission(request, draft):
            raise PermissionDenied
        if not draft.is_draft:
            self.message_user(request, _("Only a draft can be previewed."), messages.ERROR)
            return HttpResponseRedirect(
                reverse("admin:scoring_scoringmodel_change", args=[draft.pk])
            )
        if request.method == "POST":
            self._preview_run(request, draft, fresh=True)
            return HttpResponseRedirect(
                reverse("admin:scoring_scoringmodel_preview", args=[draft.pk])
            )
        run = self._preview_run(request, draft)
        context = self._context(
            request, draft, _("Preview and backtest of v%(v)s") % {"v": draft.version}
        )
        context["run"] = run
        context["diff"] = selectors.scoring_model_diff(draft=draft)
        context["has_published"] = run.baseline_id not in (None, draft.pk)
        if not run.is_active:
            context["preview"] = selectors.preview_from_run(run=run)
            changes = selectors.preview_run_changes(run=run, **self._filters(request))
            context.update(self._changes_context(changes))
        return TemplateResponse(request, "admin/scoring/scoringmodel/preview.html", context)

    def preview_progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The job's progress panel alone, polled by the preview page while the job runs.
        Once it is done (or the draft changed, so another job is due) the page reloads
        itself (HX-Refresh) and reads the result."""
        draft = get_object_or_404(ScoringModel, pk=pk)
        if not self.has_view_permission(request, draft):
            raise PermissionDenied
        run = selectors.preview_run_current(draft=draft) if draft.is_draft else None
        response = TemplateResponse(
            request, "admin/scoring/scoringmodel/_preview_progress.html", {"run": run}
        )
        if run is None or not run.is_active:
            response["HX-Refresh"] = "true"
        return response

    def changes_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The changed-leads list alone: searching and paging replace it in place (htmx),
        read from the draft's finished preview job."""
        draft = get_object_or_404(ScoringModel, pk=pk)
        if not self.has_view_permission(request, draft):
            raise PermissionDenied
        context: dict = {"original": draft}
        run = self._preview_run(request, draft) if draft.is_draft else None
        if run is not None and not run.is_active:
            changes = selectors.preview_run_changes(run=run, **self._filters(request))
            context.update(self._changes_context(changes))
        return TemplateResponse(request, "admin/scoring/scoringmodel/_changes.html", context)

    def publish_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        draft = get_object_or_404(ScoringModel, pk=pk)
        if not request.user.has_perm("scoring.publish_scoringmodel"):
            raise PermissionDenied
        if request.method == "POST":
            try:
                run = services.scoring_model_publish(model=draft, actor=request_user(request))
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
                return HttpResponseRedirect(
                    reverse("admin:scoring_scoringmodel_change", args=[draft.pk])
                )
            self.message_user(
                request,
                _("Version %(v)s is published. Every lead is being rescored (%(n)s leads).")
                % {"v": draft.version, "n": run.total},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:scoring_rescorerun_change", args=[run.pk]))
        context = self._context(request, draft, _("Publish v%(v)s") % {"v": draft.version})
        context["published"] = ScoringModel.objects.filter(status=ModelStatus.PUBLISHED).first()
        if draft.is_draft:
            # The figure the preview job stored (the preview page's), never scored again
            # here: a million leads would not fit in a request, and a second count could
            # differ from the one the marketer read.
            promise = selectors.publish_promise(draft=draft)
            context["promise"] = promise
            context["preview"] = promise.preview
            context["diff"] = selectors.scoring_model_diff(draft=draft)
        return TemplateResponse(request, "admin/scoring/scoringmodel/publish.html", context)


@admin.register(LeadScore)
class LeadScoreAdmin(ReadOnlyAdmin):
    # Scores are written by the scoring services only.
    list_display = (
        "lead",
        "lead_stage",
        "model_version",
        "fit",
        "engagement",
        "meets_policy",
        "last_event_at",
        "computed_at",
    )
    list_filter = ("model", "lead__stage", "computed_at")
    search_fields = ("lead__email", "lead__last_name", "lead__company__name")
    list_select_related = ("lead", "model")
    date_hierarchy = "computed_at"
    fields = (
        "lead",
        "model",
        ("fit", "engagement"),
        "explanation",
        ("last_event_at", "hand_raised_at", "computed_at"),
    )
    readonly_fields = (
        "lead",
        "model",
        "fit",
        "engagement",
        "explanation",
        "last_event_at",
        "hand_raised_at",
        "computed_at",
    )
    ordering = ("-computed_at",)

    @admin.display(description=_("stage"), ordering="lead__stage")
    def lead_stage(self, obj: LeadScore) -> str:
        return obj.lead.get_stage_display()

    @admin.display(description=_("model"), ordering="model__version")
    def model_version(self, obj: LeadScore) -> str:
        return f"v{obj.model.version}" if obj.model is not None else "-"

    @admin.display(description=_("meets MQL policy"), boolean=True)
    def meets_policy(self, obj: LeadScore) -> bool | None:
        if not obj.model_id:
            return None
        model = engine.compiled(obj.model_id)
        return policy.meets_thresholds(model, obj.fit, obj.engagement) or policy.raised_hand(
            model, obj.fit, obj.hand_raised_at
        )

    @admin.display(description=_("explanation (now)"))
    def explanation(self, obj: LeadScore) -> str:
        if not obj.model_id:
            return "-"
        explained = selectors.lead_score_explain(score=obj, at=timezone.now())
        html = render_to_string("admin/scoring/explanation.html", {"x": explained})
        return mark_safe(html)  # noqa: S308 - rendered by an autoescaping template


class RescoreSliceInline(admin.TabularInline):
    model = RescoreSlice
    fields = ("lower", "upper", "cursor", "finished")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RescoreRun)
class RescoreRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "model",
        "status",
        "progress",
        "moved_to_mql",
        "created_at",
        "started_at",
        "finished_at",
    )
    list_filter = ("status",)
    list_select_related = ("model",)
    # Status, progress, moves and times are on the live panel above the form
    # (_progress.html), which refreshes itself while the run goes.
    readonly_fields = ("model", "total", "created_at")
    fields = readonly_fields
    actions = ("rescore_again",)
    inlines = (RescoreSliceInline,)
    change_form_template = "admin/scoring/rescorerun/change_form.html"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/progress/",
                wrap(self.progress_view),
                name="scoring_rescorerun_progress",
            ),
            *super().get_urls(),
        ]

    def progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The live panel alone, polled by the change page until the run is over."""
        run = get_object_or_404(RescoreRun.objects.select_related("model"), pk=pk)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        return TemplateResponse(request, "admin/scoring/rescorerun/_progress.html", {"run": run})

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("progress"))
    def progress(self, obj: RescoreRun) -> str:
        return format_html(
            '<progress max="100" value="{}"></progress> {}% ({} / {})',
            obj.percent,
            obj.percent,
            obj.done,
            obj.total,
        )

    @admin.action(
        description=_("Rescore every lead again under the published model"),
        permissions=["view"],
    )
    def rescore_again(self, request, queryset) -> None:
        if not request.user.has_perm("scoring.publish_scoringmodel"):
            raise PermissionDenied
        published = ScoringModel.objects.filter(status=ModelStatus.PUBLISHED).first()
        if published is None:
            self.message_user(request, _("No model is published."), messages.ERROR)
            return
        run = services.rescore_run_start(model=published)
        self.message_user(
            request,
            _("Rescore #%(id)s queued for %(n)s leads.") % {"id": run.pk, "n": run.total},
            messages.SUCCESS,
        )
