from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "apps.payments"
    label = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from apps.payments import consumers, metrics, risk  # noqa: F401  (consumers: registers them)
        from apps.payments.services import open_deposit_review
        from apps.wallets.deposits_review import DepositReviewPolicy, register_deposit_review_policy

        metrics.connect()  # its scrape-time state and the review-decision latency, registered with core
        # Deposits are assessed by the payments' risk rules and held in the same review queue.
        register_deposit_review_policy(
            DepositReviewPolicy(assess=risk.assess_deposit, open_review=open_deposit_review)
        )
