from django.apps import AppConfig


class PayoutsConfig(AppConfig):
    name = "apps.payouts"
    label = "payouts"
    verbose_name = "Payouts"

    def ready(self) -> None:
        from apps.ledger.balance_checks import SystemBalanceCheck, register_system_balance_check
        from apps.payouts import consumers  # noqa: F401  (registers the outbox consumers)
        from apps.payouts.selectors import payouts_in_transit_by_currency

        # `manage.py verify_ledger` proves the payouts_in_transit account holds exactly the open payouts.
        register_system_balance_check(
            SystemBalanceCheck(
                code="payouts_in_transit",
                description="open payouts (pending or in transit)",
                expected=payouts_in_transit_by_currency,
            )
        )
