from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "apps.subscriptions"
    label = "subscriptions"
    verbose_name = "Subscriptions"

    def ready(self) -> None:
        # Registers the billing settings check and the outbox consumers.
        from apps.subscriptions import checks, consumers  # noqa: F401
