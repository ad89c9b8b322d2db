from django.urls import path

from integrations import views

app_name = "integrations"

urlpatterns = [
    path("api/v1/intake/<slug:slug>/", views.intake, name="intake"),
]
