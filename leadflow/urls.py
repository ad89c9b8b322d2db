from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from leadflow import views
from leadflow.api.views import SchemaApi
from ops import views as ops_views

urlpatterns = [
    # First, the webhook doors (settings.WEBHOOK_PATH_PREFIXES): intake is the busiest URL
    # and resolving walks this list in order; behind the API's router it cost a webhook
    # 0.03 ms of its 0.57 ms of Python (issue #17's profile).
    path("", include("integrations.urls")),
    path("api/v1/feedback/", include("integrations.outbound.urls")),
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages without a <link rel="icon"> (the admin's).
    path("favicon.ico", views.favicon, name="favicon"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/token/", views.account_token, name="account-token"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("leadflow.api.urls")),
    path("api/v1/", include("scoring.urls")),
    path("api/schema/", SchemaApi.as_view(), name="api-schema"),
    # The schema needs a user (SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]: 401 for the API);
    # the docs page is for browsers: anonymous is sent to the login page. The split view
    # serves its init script as a file (?script), which the Content-Security-Policy needs.
    path(
        "api/docs/",
        login_required(
            SpectacularSwaggerSplitView.as_view(
                url_name="api-schema", template_name="api/swagger_ui.html"
            )
        ),
        name="api-docs",
    ),
    path("", include("handoff.urls")),
    path("", include("sla.urls")),
    path("api/v1/", include("privacy.urls")),
]

handler404 = "leadflow.views.page_not_found"
handler500 = "leadflow.views.server_error"
