"""The routing plan studio in the admin: a draft copied from the live configuration,
edited in place (teams' switches, rules, members, capacities and hours), replayed by a
background job whose page refreshes itself, then published. Mirrors the scoring
studio's draft → preview → publish (scoring/admin.py)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from handoff import plans, replay
from handoff.admin import RoutingRuleForm
from handoff.models import (
    PlanMember,
    PlanRep,
    PlanRule,
    PlanStatus,
    PlanTeam,
    RoutingPlan,
)
from leadflow.admin_inlines import DraftOnlyInline, request_user
from leadflow.errors import DomainError

DEFAULT_WEEKS = 4


class PlanTeamInline(DraftOnlyInline):
    model = PlanTeam
    fields = ("team", *plans.TEAM_FIELDS)


class PlanRuleForm(RoutingRuleForm):
    """The live rule's form (checkboxes for the lists, the employee range check) on a
    plan's rule: the same fields by the same names."""

    class Meta(RoutingRuleForm.Meta):
        model = PlanRule  # type: ignore[assignment]  # same fields as RoutingRule


class PlanRuleInline(DraftOnlyInline):
    model = PlanRule
    form = PlanRuleForm
    classes = ("collapse",)


class PlanMemberInline(DraftOnlyInline):
    model = PlanMember
    fields = ("team", "rep", "is_active")
    raw_id_fields = ("rep",)


class PlanRepInline(DraftOnlyInline):
    model = PlanRep
    fields = ("rep", "max_open_handoffs", "weekdays", "starts_at", "ends_at")
    raw_id_fields = ("rep",)


@admin.register(RoutingPlan)
class RoutingPlanAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "updated_at", "published_at", "published_by")
    list_filter = ("status",)
    search_fields = ("name", "notes")
    readonly_fields = ("status", "created_by", "published_at", "published_by")
    inlines = (PlanTeamInline, PlanMemberInline, PlanRepInline, PlanRuleInline)
    change_form_template = "admin/handoff/routingplan/change_form.html"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "notes")
        return ("name", "notes", ("status", "created_by"), ("published_at", "published_by"))

    def get_inlines(self, request, obj):
        # A new plan is a copy of the live configuration: its rows exist once it is saved.
        return self.inlines if obj is not None else ()

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status != PlanStatus.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status == PlanStatus.PUBLISHED:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
        else:
            plans.routing_plan_draft_create(plan=obj, actor=request_user(request))

    # --- extra pages: replay and publish ---------------------------------------------
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/replay/", wrap(self.replay_view), name="handoff_routingplan_replay"),
            path(
                "<int:pk>/replay/progress/",
                wrap(self.replay_progress_view),
                name="handoff_routingplan_replay_progress",
            ),
            path("<int:pk>/publish/", wrap(self.publish_view), name="handoff_routingplan_publish"),
            *super().get_urls(),
        ]

    def _context(self, request, plan: RoutingPlan, title) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": plan,
            "title": title,
            "can_publish": plan.is_draft and request.user.has_perm("handoff.publish_routingplan"),
        }

    def replay_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The draft's replay: the result of its latest job while the draft has not
        changed since, else a progress panel while the job runs; POST starts a new one
        over the chosen weeks."""
        plan = get_object_or_404(RoutingPlan, pk=pk)
        if not self.has_view_permission(request, plan):
            raise PermissionDenied
        here = reverse("admin:handoff_routingplan_replay", args=[plan.pk])
        if request.method == "POST":
            if not self.has_change_permission(request, plan):
                raise PermissionDenied
            try:
                weeks = int(request.POST.get("weeks", DEFAULT_WEEKS))
            except ValueError:
                weeks = 0
            try:
                replay.replay_run_start(
                    plan=plan, weeks=weeks, actor=request_user(request), fresh=True
                )
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(here)
        run = replay.replay_run_current(plan=plan) if plan.is_draft else None
        context = self._context(request, plan, _("Replay of %(plan)s") % {"plan": plan.name})
        context.update(run=run, weeks=run.weeks if run else DEFAULT_WEEKS)
        context["can_replay"] = plan.is_draft and self.has_change_permission(request, plan)
        return TemplateResponse(request, "admin/handoff/routingplan/replay.html", context)

    def replay_progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The job's progress panel alone, polled by the replay page while it runs; once
        done (or the draft changed) the page reloads itself (HX-Refresh)."""
        plan = get_object_or_404(RoutingPlan, pk=pk)
        if not self.has_view_permission(request, plan):
            raise PermissionDenied
        run = replay.replay_run_current(plan=plan) if plan.is_draft else None
        response = TemplateResponse(
            request, "admin/handoff/routingplan/_replay_progress.html", {"run": run}
        )
        if run is None or not run.is_active:
            response["HX-Refresh"] = "true"
        return response

    def publish_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        plan = get_object_or_404(RoutingPlan, pk=pk)
        if not request.user.has_perm("handoff.publish_routingplan"):
            raise PermissionDenied
        if request.method == "POST":
            try:
                plans.routing_plan_publish(plan=plan, actor=request_user(request))
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
                return HttpResponseRedirect(
                    reverse("admin:handoff_routingplan_change", args=[plan.pk])
                )
            self.message_user(
                request,
                _("“%(plan)s” is published: routing now follows it.") % {"plan": plan.name},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:handoff_routingplan_changelist"))
        context = self._context(request, plan, _("Publish %(plan)s") % {"plan": plan.name})
        context["run"] = replay.replay_run_current(plan=plan) if plan.is_draft else None
        context["problems"] = plans.routing_plan_problems(plan=plan) if plan.is_draft else []
        context["published"] = RoutingPlan.objects.filter(status=PlanStatus.PUBLISHED).first()
        return TemplateResponse(request, "admin/handoff/routingplan/publish.html", context)
