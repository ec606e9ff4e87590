from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "apps.gateways"
    label = "gateways"
    verbose_name = "Gateways"

    def ready(self) -> None:
        from apps.core.pci import register_token_format
        from apps.gateways.payment_methods import ANET_PROFILE_PATTERN

        # Authorize.Net's profile ids, joined by a slash, can pass for a card number: they are not one.
        register_token_format(ANET_PROFILE_PATTERN)
