from django.urls import path

from integrations.outbound import views

app_name = "outbound"

urlpatterns = [
    path("<slug:slug>/", views.feedback_receive, name="feedback"),
]
