from django.urls import path
from rest_framework.routers import DefaultRouter

from leadflow.api.views import AccountTokenApi, LeadViewSet

router = DefaultRouter()
router.register("leads", LeadViewSet, basename="lead")

urlpatterns = [
    *router.urls,
    path("account/token/", AccountTokenApi.as_view(), name="account-token-api"),
]
