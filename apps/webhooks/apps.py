from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "apps.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Registers the dead-letter replayer for "webhook_event" (admin, replay_webhooks).
        from apps.webhooks import metrics, services  # noqa: F401

        metrics.connect()  # the backlog, lag and dead events, registered with core's metrics
