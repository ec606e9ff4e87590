from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Platform plumbing"

    def ready(self) -> None:
        from apps.core import (
            celery_signals,  # noqa: F401  (correlation ids into tasks)
            crypto,  # noqa: F401  (key check, setting_changed hook)
            db_routing,  # noqa: F401  (each Celery task is its own unit of work for the replica router)
            metrics,  # noqa: F401  (business metrics, Celery task outcomes, the worker's exporter)
        )
