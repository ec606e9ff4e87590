"""The Celery application. Configured from Django settings (namespace CELERY)."""

import os

from celery import Celery

# Unset means production: a deployment that forgets it must not get DEBUG and local keys.
# manage.py and `make run` (config.embedded_db) default to the local settings instead.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("paydesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
