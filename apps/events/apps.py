from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "apps.events"
    label = "events"
    verbose_name = "Events and outbound webhooks"

    def ready(self) -> None:
        from apps.events import (
            consumers,  # noqa: F401  (the outbox consumer that makes public events and deliveries)
            metrics,
        )

        metrics.connect()
