from django.urls import include, path
from rest_framework.routers import DefaultRouter

from handoff import api, list_views, views

app_name = "handoff"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("handoffs", api.HandoffViewSet, basename="api-handoff")

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/availability/", views.availability, name="availability"),
    path("inbox/list/", list_views.handoff_list_page, name="list"),
    path("inbox/live/", list_views.live, name="live"),
    path("inbox/bulk-reassign/", list_views.bulk_reassign, name="bulk-reassign"),
    path("inbox/handoffs/<int:pk>/", views.detail, name="detail"),
    path("inbox/handoffs/<int:pk>/activities/", views.activity_create, name="activity-create"),
    path("inbox/handoffs/<int:pk>/accept/", views.accept, name="accept"),
    path("inbox/handoffs/<int:pk>/claim/", views.claim, name="claim"),
    path("inbox/handoffs/<int:pk>/reject/", views.reject, name="reject"),
    path("inbox/handoffs/<int:pk>/reassign/", views.reassign, name="reassign"),
    path("inbox/handoffs/<int:pk>/stage/", views.stage_change, name="stage"),
    path(
        "inbox/teams/<int:team_id>/assign-queue/",
        views.team_assign_queue,
        name="team-assign-queue",
    ),
    path("api/v1/", include(router.urls)),
    path("api/v1/me/availability/", api.MyAvailabilityApi.as_view(), name="api-my-availability"),
]
