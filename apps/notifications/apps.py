from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "apps.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from apps.notifications import (
            consumers,  # noqa: F401  (outbox consumers: one email per event and recipient)
            services,  # noqa: F401  (dead-letter replayer)
        )
