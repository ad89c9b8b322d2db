from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SlaConfig(AppConfig):
    name = "sla"
    verbose_name = _("SLA")

    def ready(self) -> None:
        # What the SLA does after a change of a handoff or lead is in leadflow.reactions.
        # The handoff lists' SLA states and the dashboard's drill-downs.
        from handoff.filters import list_condition_register
        from sla.kpis import KPI_LABELS, handoff_kpi_condition
        from sla.selectors import handoff_sla_state_condition

        list_condition_register("sla", handoff_sla_state_condition)
        list_condition_register("kpi", handoff_kpi_condition, choices=list(KPI_LABELS.items()))
        # Routing and the claim window skip reps who are off (each rep's working hours).
        from handoff.hours import working_hours_register
        from sla.hours import CalendarWorkingHours

        working_hours_register(CalendarWorkingHours())
        # A routing plan's replay: the plan's hours, business time, the first-contact SLA.
        from handoff.plans import plan_timing_register
        from sla.plan_timing import CalendarPlanTiming

        plan_timing_register(CalendarPlanTiming())
