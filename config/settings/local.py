"""Local development: the embedded default unless the environment says otherwise."""

import os

import environ

from config.embedded_db import ROOT, embedded_url

# base.py reads .env too (without overriding the environment); read it first so that its
# DATABASE_URL, when it has one, wins over the embedded server's.
if (ROOT / ".env").is_file():
    environ.Env.read_env(ROOT / ".env")
# Unset: the embedded PostgreSQL that `make run` starts (config.embedded_db).
if not os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = embedded_url()

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DEBUG", default=True)

# Eager tasks would log a line per task run in the dev server; workers keep them at INFO.
LOGGING["loggers"]["celery.app.trace"] = {"level": "WARNING"}  # noqa: F405

# No EMAIL_URL: each email goes whole to a file under .run/emails/ and one line to the console
# (config/dev_email.py), instead of the console backend's full dump of every message.
if not os.environ.get("EMAIL_URL"):
    EMAIL_BACKEND = "config.dev_email.SummaryFileBackend"
    EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default="") or str(ROOT / ".run" / "emails")
