from django.urls import path

from sla import api, views

app_name = "sla"

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/speed/", views.speed_to_lead, name="speed"),
    path("dashboard/export/<slug:table>.csv", views.export_csv, name="export"),
    path("inbox/handoffs/<int:pk>/speed/", views.handoff_speed, name="handoff-speed"),
    path("dashboard/handoffs/<int:pk>/reassign/", views.reassign, name="reassign"),
    path("api/v1/metrics/summary/", api.MetricsSummaryApi.as_view(), name="api-summary"),
    path("api/v1/metrics/weekly/", api.MetricsWeeklyApi.as_view(), name="api-weekly"),
    path("api/v1/metrics/reps/", api.MetricsRepsApi.as_view(), name="api-reps"),
    path("api/v1/metrics/claims/", api.MetricsClaimsApi.as_view(), name="api-claims"),
    path("api/v1/metrics/sources/", api.MetricsSourcesApi.as_view(), name="api-sources"),
    path("api/v1/metrics/rejections/", api.MetricsRejectionsApi.as_view(), name="api-rejections"),
    path("api/v1/metrics/marketing/", api.MetricsMarketingApi.as_view(), name="api-marketing"),
    path("api/v1/metrics/overdue/", api.MetricsOverdueApi.as_view(), name="api-overdue"),
    path("api/v1/metrics/speed/", api.MetricsSpeedApi.as_view(), name="api-speed"),
]
