"""Local development: the embedded default unless the environment says otherwise."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DEBUG", default=True)

# Eager tasks would log a line per task run in the dev server; workers keep them at INFO.
LOGGING["loggers"]["celery.app.trace"] = {"level": "WARNING"}  # noqa: F405
