"""Production: differs from the others only through variables, and refuses insecure defaults."""

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import env

SECRET_KEY = env("SECRET_KEY")  # no default: a production process without it must not start
# Production never runs on the embedded defaults (an embedded database, per-process cache, eager tasks).
for required in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "FIELD_ENCRYPTION_KEYS"):
    env(required)
# Payment counts and the review queue are not for the internet: the scraper presents this token.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
if not METRICS_TOKEN.strip():
    raise ImproperlyConfigured(
        "Set the METRICS_TOKEN environment variable (bearer token of /api/v1/metrics)."
    )
DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
