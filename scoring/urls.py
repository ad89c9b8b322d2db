"""Scoring API routes; included under api/v1/ by leadflow/urls.py."""

from django.urls import path

from scoring.api import LeadScoreApi

app_name = "scoring"

urlpatterns = [
    path("leads/<int:lead_id>/score/", LeadScoreApi.as_view(), name="lead-score"),
]
