"""Tests run against real PostgreSQL and Redis (the test command checks both are reachable)."""

import os

# Defaults for the local services; CI and developers may point elsewhere through the environment.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/paydesk")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")

from config.settings.base import *  # noqa: F403
from config.settings.base import CACHES, DATABASES, REST_FRAMEWORK, env

DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_paydesk")}

# A Redis database of the tests' own; each xdist worker has its own key prefix, cleared per test.
CACHES["default"]["KEY_PREFIX"] = (
    f"{os.environ.get('TEST_CACHE_PREFIX', 'paydesk-test')}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests read mail from Django's outbox; end-to-end workers send through a real SMTP sink instead.
EMAIL_BACKEND = env("TEST_EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
# Events are published on commit, also by the end-to-end tests' workers; the relay's tests turn it on.
OUTBOX_RELAY = env.bool("OUTBOX_RELAY", default=False)
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
    "register": "1000/minute",
    "login_ip": "1000/minute",
}
