"""Privacy API routes; included under api/v1/ by leadflow/urls.py."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from privacy.api import ErasureRequestViewSet, PersonExportApi

app_name = "privacy"

router = SimpleRouter()
router.register("privacy/erasures", ErasureRequestViewSet, basename="erasure")

urlpatterns = [
    *router.urls,
    path("privacy/export/", PersonExportApi.as_view(), name="export"),
]
