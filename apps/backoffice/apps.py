from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    """Staff pages that belong to no single model: the dashboard, the shared admin look."""

    name = "apps.backoffice"
    label = "backoffice"
    verbose_name = "Back office"
