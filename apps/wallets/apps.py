from django.apps import AppConfig


class WalletsConfig(AppConfig):
    name = "apps.wallets"
    label = "wallets"
    verbose_name = "Wallets"

    def ready(self) -> None:
        from apps.ledger.balance_checks import CachedBalanceCheck, register_cached_balance_check
        from apps.wallets.selectors import wallet_cached_balances, wallet_count

        # `manage.py verify_ledger` proves every wallet's cached balance against its postings.
        register_cached_balance_check(
            CachedBalanceCheck(
                noun="wallet",
                plural="wallets",
                count=wallet_count,
                batch=lambda after_id, limit: wallet_cached_balances(after_id=after_id, limit=limit),
            )
        )
