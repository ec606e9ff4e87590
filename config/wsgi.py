import os

from django.core.wsgi import get_wsgi_application

# Unset means production: a deployment that forgets it must not get DEBUG and local keys.
# manage.py and `make run` (config.embedded_db) default to the local settings instead.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_wsgi_application()
