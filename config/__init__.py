import os

# What the environment chose, read before the Celery app below defaults it to production:
# `make run` (config.embedded_db) defaults to the local settings instead.
SETTINGS_FROM_ENVIRONMENT = os.environ.get("DJANGO_SETTINGS_MODULE")

from config.celery import app as celery_app  # noqa: E402

__all__ = ("SETTINGS_FROM_ENVIRONMENT", "celery_app")
