from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SlaConfig(AppConfig):
    name = "sla"
    verbose_name = _("SLA")

    def ready(self) -> None:
        from collections.abc import Callable

        from django.dispatch import Signal

        from handoff import signals
        from handoff.selectors import urgency_ordering_register
        from leadflow import signals as lead_signals
        from sla import receivers
        from sla.selectors import handoffs_order_by_due

        connections: list[tuple[Signal, Callable[..., None]]] = [
            (signals.handoff_created, receivers.on_handoff_created),
            (signals.handoff_assigned, receivers.on_handoff_assigned),
            (signals.activity_logged, receivers.on_activity_logged),
            (signals.handoff_rejecting, receivers.on_handoff_rejecting),
            (signals.handoff_decided, receivers.on_handoff_decided),
            (lead_signals.lead_stage_changed, receivers.on_lead_stage_changed),
            (lead_signals.leads_merged, receivers.on_leads_merged),
        ]
        for signal, receiver in connections:
            signal.connect(receiver, dispatch_uid=f"sla.{receiver.__name__}")
        # The inbox shows the most urgent first: the nearest SLA due time.
        urgency_ordering_register(handoffs_order_by_due)
        # The handoff lists' SLA states and the dashboard's drill-downs.
        from handoff.filters import list_condition_register
        from sla.kpis import KPI_LABELS, handoff_kpi_condition
        from sla.selectors import handoff_sla_state_condition

        list_condition_register("sla", handoff_sla_state_condition)
        # Routing and the claim window skip reps who are off (each rep's working hours).
        from handoff.hours import working_hours_register
        from sla.hours import CalendarWorkingHours

        working_hours_register(CalendarWorkingHours())
        list_condition_register("kpi", handoff_kpi_condition, choices=list(KPI_LABELS.items()))
