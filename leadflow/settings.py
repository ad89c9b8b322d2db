"""LeadFlow settings, read from the environment.

With nothing set, LeadFlow runs on SQLite in the project folder and a Celery broker
that needs no server (kombu's filesystem transport), which is what `make run` and the
default test run use. Set DATABASE_URL and CELERY_BROKER_URL (or REDIS_URL) to run the
same code on PostgreSQL and Redis. The README lists every variable.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from django_guid.integrations import CeleryIntegration
from kombu import Queue

from leadflow.env import (
    env_bool,
    env_choice,
    env_file_path,
    env_int,
    env_list,
    env_str,
    env_url,
    load_env_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# `make run`'s .env (DEBUG, SECRET_KEY, PUBLIC_BASE_URL, ...), under the real environment.
load_env_file(env_file_path(BASE_DIR))
VAR_DIR = Path(env_str("LEADFLOW_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for local development)."
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Public base URL (e.g. https://leadflow.example.co.jp) used when a vendor signs the URL
# it called (HubSpot v2/v3) and for links in e-mails.
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", "http://127.0.0.1:8000", schemes={"http", "https"})

INSTALLED_APPS = [
    "leadflow.apps.LeadflowAdminConfig",  # django.contrib.admin with LeadFlow's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_guid",
    "axes",
    "csp",  # its system checks catch settings in the pre-4.0 format
    "leadflow.apps.LeadflowConfig",
    "scoring.apps.ScoringConfig",
    "handoff.apps.HandoffConfig",
    "sla.apps.SlaConfig",
    "integrations.apps.IntegrationsConfig",
    "privacy.apps.PrivacyConfig",
]

MIDDLEWARE = [
    # First, so every later log line of the request carries its id.
    "django_guid.middleware.guid_middleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After whitenoise: static files answer before it (a policy is for documents).
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "leadflow.middleware.RejectNulInQueryMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "leadflow.middleware.NotFoundPageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

# The signed webhook doors (leadflow/wsgi.py): machines, not browsers, so none of the
# session, user, CSRF, CSP, frame or lockout middlewares; the rest in the same order.
WEBHOOK_PATH_PREFIXES = ["/api/v1/intake/", "/api/v1/feedback/"]
WEBHOOK_MIDDLEWARE = [
    "django_guid.middleware.guid_middleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "leadflow.middleware.RejectNulInQueryMiddleware",
]

ROOT_URLCONF = "leadflow.urls"
WSGI_APPLICATION = "leadflow.wsgi.application"
ASGI_APPLICATION = "leadflow.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "sla.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
_default_db_url = f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASE_URL = env_url(
    "DATABASE_URL",
    _default_db_url,
    schemes={"sqlite", "postgres", "postgresql", "pgsql"},
)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat write to one file: IMMEDIATE transactions take the write lock
    # up front (so two writers queue instead of failing half-way), WAL lets readers go on.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Covering indexes (INCLUDE) are a PostgreSQL speed-up; SQLite builds the same index
    # without the extra columns, which is all a development database needs.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # No JIT compilation: the scoring and dashboard statements join CTEs whose row
    # estimates multiply into huge costs, so PostgreSQL JIT-compiled each of them for about
    # 2.6 s (EXPLAIN ANALYZE of a preview batch: 3.5 s with JIT, 1.1 s without), more than
    # the work itself. An `options` given in DATABASE_URL is kept as it is.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "leadflow.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses logins while locked out
    "django.contrib.auth.backends.ModelBackend",
]
# Password guessing: after AXES_FAILURE_LIMIT failures for one username from one address,
# that pair is locked for AXES_COOLOFF_MINUTES. Per pair, so an attacker cannot lock a
# rep out from elsewhere and one office NAT does not lock everybody.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Language and time ----------------------------------------------------------------
LANGUAGE_CODE = env_choice("LANGUAGE_CODE", "ja", choices={"ja", "en"})
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Tokyo")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Celery ---------------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", "", schemes={"redis", "rediss"})
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL",
    REDIS_URL or "filesystem://",
    schemes={"filesystem", "redis", "rediss", "amqp", "memory"},
)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        # kombu's default is ./control in the working directory: keep it under var/.
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # With acks late, a task whose whole worker died (kill -9, a lost machine) is given to
    # another worker when this runs out; a killed pool process is redelivered at once, and
    # a worker stopped cleanly hands its messages back as it stops. Not lower: a message
    # still unacknowledged after this is delivered again even though its worker lives, so
    # it must stay above the longest countdown of a retrying task (notifications back off
    # up to 10 min) and the task time limit (300 s). The hour is not what bounds recovery:
    # inbound events are re-enqueued by the requeue sweep after INBOUND_REQUEUE_LEASE_SECONDS,
    # outbox rows by the outbox sweep once their lease ends, SLA timers by the next sweep.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60)
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a task killed mid-way is redelivered; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Connections are recycled by CONN_MAX_AGE (leadflow/celery.py), not after every task.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=1)
# Queues, so one kind of work cannot starve another: a flood of webhooks does not delay
# SFA delivery or SLA escalations. Routed by task name; anything unlisted goes to the
# default queue "celery". A worker started without -Q consumes all of them (the local
# run); in production run one worker per queue (README "Operations").
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [
    Queue(name, routing_key=name) for name in ("celery", "intake", "scoring", "delivery", "sla")
]
CELERY_TASK_ROUTES = {
    "integrations.process_inbound_event": {"queue": "intake"},
    "integrations.drain_inbound_events": {"queue": "intake"},
    "integrations.requeue_stale_inbound_events": {"queue": "intake"},
    "integrations.prune_inbound_payloads": {"queue": "intake"},
    # A large import's MQLs: scoring work, beside the rescores, not behind the webhooks.
    "integrations.hand_off_lead_import": {"queue": "scoring"},
    "integrations.hand_off_stale_lead_imports": {"queue": "scoring"},
    "scoring.*": {"queue": "scoring"},
    "integrations.outbound.*": {"queue": "delivery"},
    "sla.*": {"queue": "sla"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "duplicates-nightly": {
        "task": "leadflow.tasks.duplicates_detect_task",
        "schedule": crontab(hour=3, minute=0),
    },
}
# The safety net of intake: inbound events still `received` whose task never reached the
# broker, or whose message the broker lost (a Redis restarted without persistence, a
# worker machine killed holding unacknowledged messages: Redis gives those back only
# after CELERY_VISIBILITY_TIMEOUT, an hour). An event is taken again once its last enqueue
# is older than the lease, unless a drain committed work within the lease (its heartbeat:
# a slow backlog, not a loss) or the intake queue still holds at least as many messages
# as there are such events (see inbound_events_requeue_stale).
# Defaults: a lost message is enqueued again at most lease + sweep = 60 + 30 s after its
# last enqueue, so a lost webhook is processed within the 2 minutes promised in the README.
# The lease is 60 s, not less: a queue that drains in under a minute is not re-fed
# duplicates, and a task's time limit bounds how long a healthy worker holds one.
INBOUND_REQUEUE_SWEEP_SECONDS = env_int("INBOUND_REQUEUE_SWEEP_SECONDS", 30, minimum=1)
INBOUND_REQUEUE_LEASE_SECONDS = env_int("INBOUND_REQUEUE_LEASE_SECONDS", 60, minimum=1)
CELERY_BEAT_SCHEDULE["integrations-requeue-stale-inbound"] = {
    "task": "integrations.requeue_stale_inbound_events",
    "schedule": float(INBOUND_REQUEUE_SWEEP_SECONDS),
    # A sweep stuck behind an intake backlog is replaced by the next one, not piled up.
    "options": {"expires": float(INBOUND_REQUEUE_SWEEP_SECONDS)},
}
# Beat's liveness: a tiny task every BEAT_HEARTBEAT_SECONDS stores when it last ran
# (leadflow.BeatHeartbeat); /readyz and `manage.py beat_health` fail once that is older
# than BEAT_STALE_SECONDS. It runs on the default queue, so a stale heartbeat means "no
# periodic task runs": beat is down, or the broker or the worker of queue `celery` is.
# 120 s = 4 missed ticks (a beat or worker restart takes a few seconds, not that), and the
# moment the 2-minute recovery promise above can no longer be kept.
BEAT_HEARTBEAT_SECONDS = env_int("BEAT_HEARTBEAT_SECONDS", 30, minimum=1)
BEAT_STALE_SECONDS = env_int("BEAT_STALE_SECONDS", 120, minimum=1)
CELERY_BEAT_SCHEDULE["leadflow-beat-heartbeat"] = {
    "task": "leadflow.beat_heartbeat",
    "schedule": float(BEAT_HEARTBEAT_SECONDS),
    # A tick that waited longer than its interval says nothing about beat now: drop it.
    "options": {"expires": float(BEAT_HEARTBEAT_SECONDS)},
}

# --- Cache ----------------------------------------------------------------------------
# Rate limits count in the cache: with Redis every web worker shares the counts.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Intake ---------------------------------------------------------------------------
INTAKE_MAX_BODY_BYTES = env_int("INTAKE_MAX_BODY_BYTES", 1024 * 1024, minimum=1)
# Raw webhook bodies and headers are personal data: after this many days they are replaced
# by a marker (the row, its status and times stay for the counts). See README "Operations".
INBOUND_RETENTION_DAYS = env_int("INBOUND_RETENTION_DAYS", 90, minimum=1)

# --- Prometheus /metrics ----------------------------------------------------------------
# Served to scrapers on these networks without a token, and to anyone with the token
# (Authorization: Bearer ...). Default: this machine only.
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = [
    ipaddress.ip_network(network, strict=False)
    for network in env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"])
]
# A large CSV import's hand-off is sent when it starts and when it ends; should the broker
# have been down both times, this sends it again (integrations.services).
CELERY_BEAT_SCHEDULE["integrations-hand-off-stale-lead-imports"] = {
    "task": "integrations.hand_off_stale_lead_imports",
    "schedule": 300.0,
    "options": {"expires": 300.0},
}
CELERY_BEAT_SCHEDULE["integrations-prune-inbound-payloads"] = {
    "task": "integrations.prune_inbound_payloads",
    "schedule": crontab(hour=4, minute=15),
}

# --- Outbound delivery (integrations.outbound) ----------------------------------------
OUTBOX_BATCH_SIZE = env_int("OUTBOX_BATCH_SIZE", 50, minimum=1)
OUTBOX_RETRY_BASE_SECONDS = env_int("OUTBOX_RETRY_BASE_SECONDS", 5, minimum=1)
OUTBOX_RETRY_MAX_SECONDS = env_int("OUTBOX_RETRY_MAX_SECONDS", 3600, minimum=1)
OUTBOX_SWEEP_SECONDS = env_int("OUTBOX_SWEEP_SECONDS", 5, minimum=1)
# The intake worker that makes an MQL sends its outbox rows itself right after the commit
# (no second task); off = every row goes through the delivery queue.
OUTBOX_DELIVER_INLINE = env_bool("OUTBOX_DELIVER_INLINE", default=True)
FEEDBACK_MAX_BYTES = env_int("FEEDBACK_MAX_BYTES", 64 * 1024, minimum=1024)
# The safety net: every few seconds deliver whatever is due (a commit whose on_commit
# enqueue was lost, retries whose backoff has run out, leases of killed workers).
CELERY_BEAT_SCHEDULE["integrations.outbound.sweep"] = {
    "task": "integrations.outbound.deliver_due",
    "schedule": float(OUTBOX_SWEEP_SECONDS),
    # A sweep nobody ran in time is replaced by the next one, not queued up behind it.
    "options": {"expires": float(OUTBOX_SWEEP_SECONDS * 2)},
}
# Bulk rescores split the leads into this many slices, one Celery task each.
SCORING_RESCORE_WORKERS = env_int("SCORING_RESCORE_WORKERS", 2, minimum=1)
# A draft's preview is a background job; with at most this many leads the page runs the
# same job itself (well under a second) instead of showing its progress.
SCORING_PREVIEW_INLINE_LEADS = env_int("SCORING_PREVIEW_INLINE_LEADS", 5000, minimum=0)
# A preview job splits the leads into this many slices, one Celery task each.
SCORING_PREVIEW_WORKERS = env_int("SCORING_PREVIEW_WORKERS", 2, minimum=1)

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "leadflow.api.parsers.JSONParser",  # a too-deeply nested body is a 400, not a 500
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "leadflow.api.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "leadflow.api.schema.AutoSchema",  # documents the error answers
    "EXCEPTION_HANDLER": "leadflow.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LeadFlow API",
    "DESCRIPTION": "Leads, scores, handoffs and SLA metrics between marketing and sales.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema maps every endpoint and filter: for users (session or token), not the web.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Request bodies are documented as JSON only. Form and multipart bodies (still parsed,
    # for the browsable API) carry text and no null, so a schema in JSON types cannot
    # describe them truly: "null" or "false" in a form is a string, not what it says.
    "PARSER_WHITELIST": ["leadflow.api.parsers.JSONParser"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
    ],
}

# --- E-mail ---------------------------------------------------------------------------
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "LeadFlow <leadflow@localhost>")

# --- Handoff --------------------------------------------------------------------------
# A Slack-compatible incoming webhook that hears about every new assignment (empty: off).
HANDOFF_SLACK_WEBHOOK_URL = env_url("HANDOFF_SLACK_WEBHOOK_URL", "", schemes={"http", "https"})
# Reps come back from "away until ..." by the clock; this gives them the waiting queue.
CELERY_BEAT_SCHEDULE["handoff-assign-queues"] = {
    "task": "handoff.tasks.assign_all_queues_task",
    "schedule": 300.0,
}

# Claim windows passed on per batch of the SLA sweep (handoff.claims); a full batch makes
# the sweep run again at once.
HANDOFF_CLAIM_SWEEP_BATCH_SIZE = env_int("HANDOFF_CLAIM_SWEEP_BATCH_SIZE", 200, minimum=1)

# --- SLA ------------------------------------------------------------------------------
# Timers claimed per sweep batch; a full batch makes the sweep run again at once.
SLA_SWEEP_BATCH_SIZE = env_int("SLA_SWEEP_BATCH_SIZE", 1000, minimum=1)
# A Slack-compatible incoming webhook that hears about every SLA breach (empty: off).
SLA_SLACK_WEBHOOK_URL = env_url("SLA_SLACK_WEBHOOK_URL", "", schemes={"http", "https"})
CELERY_BEAT_SCHEDULE["sla-sweep"] = {
    "task": "sla.tasks.sweep_task",
    "schedule": 60.0,
    # A sweep nobody ran in time is replaced by the next one, not queued up behind it.
    "options": {"expires": 120.0},
}
# The dashboard's per-day sums: stale days every minute, everything once a night.
CELERY_BEAT_SCHEDULE["sla-kpi-refresh"] = {
    "task": "sla.tasks.kpi_refresh_task",
    "schedule": 60.0,
    "options": {"expires": 120.0},
}
CELERY_BEAT_SCHEDULE["sla-kpi-rebuild"] = {
    "task": "sla.tasks.kpi_rebuild_task",
    "schedule": crontab(hour=3, minute=30),
}
# Monday 9:00 in CELERY_TIMEZONE (= TIME_ZONE, Asia/Tokyo by default).
CELERY_BEAT_SCHEDULE["sla-weekly-digest"] = {
    "task": "sla.tasks.weekly_digest_task",
    "schedule": crontab(day_of_week="mon", hour=9, minute=0),
}

# --- Security -------------------------------------------------------------------------
# Outside DEBUG LeadFlow is served over https: secure cookies, http redirected to https,
# HSTS for the host and its subdomains with the preload flag, so `check --deploy` is
# clean with the production settings. A plain-http deployment (docker-compose on a
# laptop) says so with LEADFLOW_SECURE_COOKIES=0, which also turns the redirect and the
# HSTS flags off; each can still be set on its own.
_https = env_bool("LEADFLOW_SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=_https)
# Probes (load balancer, docker health checks) often speak plain http to the process
# itself: a redirect would read as "up" to some and as a failure to others. So does a
# Prometheus on the same network (/metrics admits it by address, see METRICS_*).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
# HSTS is sent on https answers only. includeSubDomains covers the names below LeadFlow's
# own host (not its siblings); preload is only a flag in the header: nothing is put on
# the browsers' preload list unless someone submits the domain at hstspreload.org.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=_https)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=_https)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): everything from LeadFlow's own origin, nothing
# inline, no eval. Pages, the admin, htmx, Chart.js and the Swagger UI need nothing else:
# scripts and styles are static files (the Swagger UI's init script is served as one,
# htmx is told not to inject its indicator <style>), the JSON for the charts sits in a
# non-executable <script type="application/json">. Scripts that set element.style (Chart.js
# sizing its canvas, the admin, Swagger UI's React) go through the CSSOM, which style-src
# does not govern. img-src allows data: for the SVG icons inlined in the admin's and
# Swagger UI's stylesheets. tests/e2e/test_csp_browser.py opens each page in chromium
# and fails on any violation.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
if env_bool("USE_X_FORWARDED_HEADERS", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

# --- Logs and request ids ---------------------------------------------------------------
# Every request gets an id (X-Request-ID in and out); django-guid carries it into the Celery
# tasks the request enqueues, so one id follows a webhook from intake to delivery.
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": False,  # accept ids of proxies and load balancers as they are
    "RETURN_HEADER": True,
    "INTEGRATIONS": [CeleryIntegration(use_django_logging=True, log_parent=True)],
}
_LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", choices={"DEBUG", "INFO", "WARNING", "ERROR"})
_FILESYSTEM_BROKER = CELERY_BROKER_URL.startswith("filesystem://")
LOG_FORMAT = env_choice("LOG_FORMAT", "plain" if DEBUG else "json", choices={"plain", "json"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "django_guid.log_filters.CorrelationId"},
        "task": {"()": "django_guid.integrations.celery.log_filters.CeleryTracing"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(correlation_id)s] %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s "
            "%(celery_current_id)s %(celery_parent_id)s",
            "rename_fields": {
                "asctime": "time",
                "levelname": "level",
                "correlation_id": "request_id",
            },
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "task"],
        }
    },
    "loggers": {
        # django-guid reports every id it sets at INFO: noise in production logs.
        "django_guid": {"level": "WARNING"},
        # Django's default config pins "django" at INFO whatever LOG_LEVEL says. Naming it
        # here resets its children, so runserver's request lines get their INFO back.
        "django": {"level": _LOG_LEVEL},
        "django.server": {"level": "INFO", "handlers": ["console"], "propagate": False},
        # The filesystem broker's URL has no host, and kombu warns so at every start.
        **({"kombu.connection": {"level": "ERROR"}} if _FILESYSTEM_BROKER else {}),
    },
    "root": {"handlers": ["console"], "level": _LOG_LEVEL},
}
