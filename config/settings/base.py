"""Settings shared by every environment. Everything that differs comes from the environment.

With no variable set but DATABASE_URL (which `make run` points at its embedded PostgreSQL), Paydesk
runs on the embedded defaults: local-memory cache, eager Celery tasks, console email and the
simulated gateway. `.env.example` documents every variable.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

# --- core ---------------------------------------------------------------------------------------
SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-change-me-0123456789abcdefghijkl")
DEBUG = env.bool("DEBUG", default=False)
# Our own reverse proxies (addresses or networks). Only a request arriving from one of them has
# its X-Forwarded-For read for the client's address (throttles, audit trail).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.ledger",
    "apps.gateways",
    "apps.wallets",
    "apps.payments",
    "apps.subscriptions",
    "apps.payouts",
    "apps.events",
    "apps.notifications",
    "apps.backoffice",
    "apps.webhooks",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "apps.core.middleware.TrustedProxyMiddleware",
    "apps.core.middleware.CorrelationIdMiddleware",
    "apps.core.middleware.ApiErrorMiddleware",
    # Each request is one unit of work for the read-replica router (before anything reads).
    "apps.core.db_routing.PrimaryPinMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.accounts.middleware.AdminIdleTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
# API.md: paths exactly as written, no trailing slash; never redirect a POST.
APPEND_SLASH = False
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------------------------
# PostgreSQL through psycopg 3, always: DATABASE_URL is required here (config.settings.local defaults
# it to the embedded server of `make run`, config.embedded_db).
DATABASES = {
    "default": env.db("DATABASE_URL"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Services own their transactions (`transaction.atomic(durable=True)`); requests are not wrapped.
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# A streaming read replica of `default` (optional). Reads go there until the request or task writes
# (apps.core.db_routing); migrations never run on it; tests use `default` for it.
REPLICA_DATABASE_URL = env("REPLICA_DATABASE_URL", default="")
if REPLICA_DATABASE_URL:
    DATABASES["replica"] = env.db("REPLICA_DATABASE_URL")
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["apps.core.db_routing.PrimaryReplicaRouter"]
# After a request that wrote, the same credentials read from the primary this long (replication lag).
REPLICA_READ_YOUR_WRITES_SECONDS = env.int("REPLICA_READ_YOUR_WRITES_SECONDS", default=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache --------------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="paydesk"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- auth ---------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.SessionJWTAuthentication",
        "apps.accounts.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JSONObjectParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.PaydeskAutoSchema",
    "EXCEPTION_HANDLER": "apps.core.exception_handler.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "register": env("THROTTLE_REGISTER", default="10/hour"),
        "login_ip": env("THROTTLE_LOGIN_IP", default="30/minute"),
        "money": env("THROTTLE_MONEY", default="600/minute"),
        "password_reset": env("THROTTLE_PASSWORD_RESET", default="5/hour"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# Failed logins per email before it is refused with 429, and the window they are counted in.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)
# These are counted per (account, client address): after the limit that address is locked out of
# the account for the window, each further failure doubling the lock up to LOGIN_LOCK_MAX_SECONDS.
LOGIN_LOCK_MAX_SECONDS = env.int("LOGIN_LOCK_MAX_SECONDS", default=86_400)
# Failures of one account from all addresses within a window past which every address gets a
# single failure before its lock (a guess spread over many addresses). Never locks a clean address.
LOGIN_ACCOUNT_FAILURE_LIMIT = env.int("LOGIN_ACCOUNT_FAILURE_LIMIT", default=50)
# A password reset link (`POST /auth/password-reset`) is valid this long, once; the emailed link
# is PASSWORD_RESET_URL?token=<token> (the page of the front end that posts it to .../confirm).
PASSWORD_RESET_TOKEN_SECONDS = env.int("PASSWORD_RESET_TOKEN_SECONDS", default=3600)
PASSWORD_RESET_URL = env("PASSWORD_RESET_URL", default="http://localhost:8000/reset-password")
# Reset emails one address receives per hour at most, however many clients ask (still 202).
PASSWORD_RESET_EMAILS_PER_HOUR = env.int("PASSWORD_RESET_EMAILS_PER_HOUR", default=3)
# An API session (a login) ends this long after it was opened, however often it is refreshed.
SESSION_MAX_AGE_SECONDS = env.int("SESSION_MAX_AGE_SECONDS", default=30 * 86_400)
# An admin (Django) session ends after this many seconds without a request.
ADMIN_SESSION_IDLE_SECONDS = env.int("ADMIN_SESSION_IDLE_SECONDS", default=900)

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    # A key of its own when set; an empty JWT_SIGNING_KEY= (as in .env.example) is unset, never an
    # empty HMAC key anyone could sign with.
    "SIGNING_KEY": env("JWT_SIGNING_KEY", default="") or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Paydesk API",
    "DESCRIPTION": "Wallets, transfers, payments, refunds and subscriptions.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="memory://")
# With no broker configured, tasks run inline (the embedded default).
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL == "memory://")
CELERY_TASK_EAGER_PROPAGATES = False
# Workers log through Django's LOGGING (JSON lines with the task's correlation id).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_DEFAULT_QUEUE", default="celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5}
# A publish that meets a pooled connection the broker has dropped (the broker restarted since)
# reconnects and tries once more at once, instead of failing the first message after every
# restart; a broker that is really down still fails fast, and the caller leaves the work to its
# sweep (outbox, notifications, webhooks) or to reconciliation (payment retries).
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0,
    "interval_max": 0,
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Each kind of deferred work has a queue of its own, so a backlog of one (a mail server down, a
# billing run) never holds up another; `celery -A config worker` consumes them all, `-Q
# notifications` starts a dedicated pool. CELERY_QUEUE_PREFIX namespaces every routed queue on a
# shared broker (the end-to-end tests). Outbox delivery stays on the default queue.
CELERY_QUEUE_PREFIX = env("CELERY_QUEUE_PREFIX", default="")
from config.settings.events import *  # noqa: E402, F403  (events API, outbound webhooks)

CELERY_ROUTED_QUEUES = {
    **EVENTS_ROUTED_QUEUES,  # noqa: F405
    "notifications": ["apps.notifications.tasks.*", "apps.accounts.tasks.send_password_reset_email"],
    "billing": ["apps.subscriptions.tasks.*"],
    "webhooks": ["apps.webhooks.tasks.*"],
    "payments": ["apps.payments.tasks.*", "apps.wallets.tasks.*", "apps.payouts.tasks.*"],  # gateway work
    "raw_logs": ["apps.audit.tasks.*"],
}
CELERY_TASK_ROUTES = {
    task: {"queue": f"{CELERY_QUEUE_PREFIX}{queue}"}
    for queue, tasks in CELERY_ROUTED_QUEUES.items()
    for task in tasks
}
# Declared with an exchange and routing key of their own name (what Celery does for a queue it
# creates), so one queue's messages never reach another.
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name)
    for name in [CELERY_TASK_DEFAULT_QUEUE, *(f"{CELERY_QUEUE_PREFIX}{q}" for q in CELERY_ROUTED_QUEUES)]
]
CELERY_BEAT_SCHEDULE = {
    **EVENTS_BEAT_SCHEDULE,  # noqa: F405
    "outbox-sweep": {"task": "apps.core.tasks.outbox_sweep", "schedule": 30.0},
    "notifications-sweep": {"task": "apps.notifications.tasks.notifications_sweep", "schedule": 60.0},
    "idempotency-purge": {"task": "apps.core.tasks.purge_idempotency_records", "schedule": 3600.0},
    "reconcile-payments": {"task": "apps.payments.tasks.reconcile_payments", "schedule": 300.0},
    "reconcile-deposits": {"task": "apps.wallets.tasks.reconcile_deposits", "schedule": 300.0},
    "webhooks-sweep": {"task": "apps.webhooks.tasks.sweep_webhook_events", "schedule": 60.0},
    "payouts-sweep": {"task": "apps.payouts.tasks.sweep_payouts", "schedule": 30.0},
    "reconcile-payouts": {"task": "apps.payouts.tasks.reconcile_payouts", "schedule": 3600.0},
    "bill-subscriptions": {
        "task": "apps.subscriptions.tasks.bill_subscriptions",
        "schedule": float(env.int("SUBSCRIPTION_BILLING_INTERVAL_SECONDS", default=60)),
    },
}

# Idempotency-Key: how long a key is remembered (at least 24 h), and how long a retry waits for the
# first request with its key before answering 409 idempotency_key_in_use.
IDEMPOTENCY_TTL_HOURS = env.int("IDEMPOTENCY_TTL_HOURS", default=24)
IDEMPOTENCY_WAIT_SECONDS = env.float("IDEMPOTENCY_WAIT_SECONDS", default=5.0)

# The relay process (`manage.py outbox_relay`) hands outbox events to the broker, woken by NOTIFY,
# in tasks of up to OUTBOX_RELAY_BATCH_SIZE events; requests no longer publish. Off, or with eager
# tasks (`make run`, tests), each change's events are published right after its commit instead.
OUTBOX_RELAY = env.bool("OUTBOX_RELAY", default=not CELERY_TASK_ALWAYS_EAGER)
OUTBOX_RELAY_BATCH_SIZE = env.int("OUTBOX_RELAY_BATCH_SIZE", default=100)
# Without a notification the relay still looks for unpublished events this often (seconds).
OUTBOX_RELAY_POLL_SECONDS = env.float("OUTBOX_RELAY_POLL_SECONDS", default=5.0)
# Woken by a commit, the relay waits this long for the commits right behind it, so that under load
# one task carries many changes (and their emails share a connection); 0 hands each over at once.
OUTBOX_RELAY_LINGER_SECONDS = env.float("OUTBOX_RELAY_LINGER_SECONDS", default=0.05)
# Events older than this and not yet delivered are handed to Celery again by the sweep.
OUTBOX_REDELIVER_AFTER_SECONDS = env.int("OUTBOX_REDELIVER_AFTER_SECONDS", default=60)
# A delivery whose consumers failed is retried after backoff_delay(base, max): full jitter.
OUTBOX_RETRY_BASE_SECONDS = env.float("OUTBOX_RETRY_BASE_SECONDS", default=5.0)
OUTBOX_RETRY_MAX_SECONDS = env.float("OUTBOX_RETRY_MAX_SECONDS", default=600.0)

# --- email --------------------------------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Paydesk <no-reply@paydesk.local>")
# Seconds an SMTP connection may hang before the send counts as failed (and is retried).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT_SECONDS", default=10)

# --- notifications ------------------------------------------------------------------------------
# Sends of one email before it is given up as failed (and dead-lettered for replay), and the
# exponential backoff between them (full jitter, capped).
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=6)
NOTIFICATION_RETRY_BASE_SECONDS = env.int("NOTIFICATION_RETRY_BASE_SECONDS", default=30)
NOTIFICATION_RETRY_MAX_SECONDS = env.int("NOTIFICATION_RETRY_MAX_SECONDS", default=3600)
# Emails one send task sends over its one SMTP connection: the ones it was given, and other
# pending ones already due (a backlog's, whose own tasks then find nothing left to do).
NOTIFICATION_SEND_BATCH = env.int("NOTIFICATION_SEND_BATCH", default=100)
# A pending email whose send is this overdue (its task was lost with the broker) is queued again.
NOTIFICATION_SWEEP_AFTER_SECONDS = env.int("NOTIFICATION_SWEEP_AFTER_SECONDS", default=120)
# An email left `sending` this long (the worker died mid-send) is failed, never resent on its own:
# it may have gone out. Replaying its dead letter sends it again.
NOTIFICATION_SENDING_TIMEOUT_SECONDS = env.int("NOTIFICATION_SENDING_TIMEOUT_SECONDS", default=900)

# --- MongoDB raw-log sink -----------------------------------------------------------------------
# mongodb://host:27017/paydesk_raw - raw gateway exchanges and notification logs are copied there
# by a Celery task. Empty: the sink is off (the events stay in PostgreSQL's outbox either way).
MONGO_URL = env("MONGO_URL", default="")
# Server selection, connect and socket timeout of every MongoDB call: a sink that is down fails a
# write fast, and the task retries.
MONGO_TIMEOUT_MS = env.int("MONGO_TIMEOUT_MS", default=2000)
# Writes of one document before it is dead-lettered, and the backoff between them.
RAW_LOG_MAX_ATTEMPTS = env.int("RAW_LOG_MAX_ATTEMPTS", default=8)
RAW_LOG_RETRY_BASE_SECONDS = env.int("RAW_LOG_RETRY_BASE_SECONDS", default=5)
RAW_LOG_RETRY_MAX_SECONDS = env.int("RAW_LOG_RETRY_MAX_SECONDS", default=600)

# --- payments -----------------------------------------------------------------------------------
# The card gateways: PAYMENT_GATEWAY, Stripe, Authorize.Net, the circuit breaker.
from config.settings.gateways import *  # noqa: E402, F403

# "kid:base64-32-byte-key,kid2:..." - the first encrypts, all decrypt (rotation). Empty: a key
# derived from SECRET_KEY (embedded default only; production requires explicit keys).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
REVIEW_AMOUNT_THRESHOLD = env.int("REVIEW_AMOUNT_THRESHOLD", default=1_000_000)
# An owner (the authenticated user / wallet owner, never a client-supplied customer_id) with this
# many payments and deposits together in the window has the next ones held for review.
# (PAYMENT_VELOCITY_* are the former names, still read when the new ones are unset.)
RISK_VELOCITY_LIMIT = env.int("RISK_VELOCITY_LIMIT", default=env.int("PAYMENT_VELOCITY_LIMIT", default=20))
RISK_VELOCITY_WINDOW_SECONDS = env.int(
    "RISK_VELOCITY_WINDOW_SECONDS", default=env.int("PAYMENT_VELOCITY_WINDOW_SECONDS", default=600)
)
# A deposit at or above this amount (minor units) is held for review: authorized, nothing credited.
DEPOSIT_REVIEW_AMOUNT_THRESHOLD = env.int("DEPOSIT_REVIEW_AMOUNT_THRESHOLD", default=1_000_000)
# Payouts: the review rules, retries, the sweep and reconciliation (apps.payouts).
from config.settings.payouts import *  # noqa: E402, F403

# Deposits retry a retryable card-gateway error the same way, in the worker (apps.wallets.deposits):
# up to DEPOSIT_RETRY_MAX_ATTEMPTS, waiting backoff_delay(base, max) between them; a pending
# deposit untouched for DEPOSIT_STUCK_AFTER_SECONDS with no retry due goes to reconciliation.
DEPOSIT_RETRY_MAX_ATTEMPTS = env.int("DEPOSIT_RETRY_MAX_ATTEMPTS", default=5)
DEPOSIT_RETRY_BASE_SECONDS = env.float("DEPOSIT_RETRY_BASE_SECONDS", default=2.0)
DEPOSIT_RETRY_MAX_SECONDS = env.float("DEPOSIT_RETRY_MAX_SECONDS", default=300.0)
DEPOSIT_STUCK_AFTER_SECONDS = env.int("DEPOSIT_STUCK_AFTER_SECONDS", default=600)

# --- inbound webhooks ---------------------------------------------------------------------------
# Stripe endpoint signing secrets (whsec_…). While a secret is rolled, list the new and the old one
# (comma-separated); when empty, STRIPE_WEBHOOK_SECRET (itself comma-separated) is used.
STRIPE_WEBHOOK_SECRETS = env.list("STRIPE_WEBHOOK_SECRETS", default=[])
# A Stripe signature older than this is refused (Stripe's own default tolerance).
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default=300)
# Authorize.Net's Signature Key (X-ANET-Signature); comma-separated while it is rotated.
AUTHORIZENET_SIGNATURE_KEY = env("AUTHORIZENET_SIGNATURE_KEY", default="")
# Webhook bodies above this are refused with 413 (provider events are a few KB).
MAX_WEBHOOK_BODY_BYTES = env.int("MAX_WEBHOOK_BODY_BYTES", default=262_144)
# Processing attempts of one event before it is dead-lettered, and the backoff between them
# (exponential, full jitter, capped).
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=5)
WEBHOOK_RETRY_MAX_SECONDS = env.int("WEBHOOK_RETRY_MAX_SECONDS", default=600)
# An event still waiting this long past its due time (queued while the broker was down, a retry
# lost with a worker) is queued again by the webhooks-sweep beat task.
WEBHOOK_SWEEP_AFTER_SECONDS = env.int("WEBHOOK_SWEEP_AFTER_SECONDS", default=120)

# --- subscriptions ------------------------------------------------------------------------------
# Dunning: days to wait before each retry of a declined renewal (after the previous failure); after
# the last retry fails the subscription becomes SUBSCRIPTION_FINAL_STATUS ("unpaid" or "canceled").
SUBSCRIPTION_DUNNING_DAYS = env.list("SUBSCRIPTION_DUNNING_DAYS", cast=int, default=[1, 3, 5])
SUBSCRIPTION_FINAL_STATUS = env("SUBSCRIPTION_FINAL_STATUS", default="unpaid")
# The beat starts this many billing passes every interval; they share the due subscriptions.
SUBSCRIPTION_BILLING_INTERVAL_SECONDS = env.int("SUBSCRIPTION_BILLING_INTERVAL_SECONDS", default=60)
SUBSCRIPTION_BILLING_PASSES = env.int("SUBSCRIPTION_BILLING_PASSES", default=2)
# Due subscriptions a pass claims at a time, and how long its claim lasts before another pass may
# take them over (a worker that died); long enough for a batch of slow gateway calls.
SUBSCRIPTION_BILLING_BATCH_SIZE = env.int("SUBSCRIPTION_BILLING_BATCH_SIZE", default=20)
SUBSCRIPTION_BILLING_LEASE_SECONDS = env.int("SUBSCRIPTION_BILLING_LEASE_SECONDS", default=600)

# --- operations: metrics -----------------------------------------------------------------------
# /api/v1/metrics reads payment, ledger, outbox, dead-letter and webhook state from the database;
# the result is shared by every process (through the cache) for this long. 0: read at every scrape.
METRICS_DB_CACHE_SECONDS = env.int("METRICS_DB_CACHE_SECONDS", default=10)
# The bearer token /api/v1/metrics requires (`Authorization: Bearer <token>`); empty: public
# (local runs and tests only: production refuses to start without it).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# A Celery worker serves its own metrics (task outcomes, gateway calls) on this port; 0: off.
# Under prefork, set PROMETHEUS_MULTIPROC_DIR too so the pool processes' counts are added up.
CELERY_WORKER_METRICS_PORT = env.int("CELERY_WORKER_METRICS_PORT", default=0)
# Binds all interfaces inside the worker container; compose keeps the port off the host.
CELERY_WORKER_METRICS_ADDR = env("CELERY_WORKER_METRICS_ADDR", default="0.0.0.0")  # noqa: S104  # nosec B104

# --- i18n, static -------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Request bodies above this are refused with 413 before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BODY_BYTES", default=1_048_576)
# What the application left unread of a body (a refused one, above all) is read and discarded
# before the answer goes out, up to this size: closing a socket with unread data makes the kernel
# reset it, and the client loses the answer. A body declared larger is not read at all.
REQUEST_DRAIN_MAX_BYTES = env.int("REQUEST_DRAIN_MAX_BYTES", default=8_388_608)

# --- logging: one JSON object per line, each with the request's correlation id ------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "apps.core.correlation.CorrelationIdLogFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["correlation"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
    },
}
