"""The payouts' settings, part of `base` (which has read `.env` before importing this): when a
payout is held for review, how its gateway call is retried, when the sweep picks up a payout left
behind and when reconciliation asks the gateway about one in transit. `.env.example` documents each."""

import environ

env = environ.Env()

# A payout at or above this amount (minor units) is held for review: the money leaves the wallet
# (in transit), nothing is sent to the gateway until a reviewer approves. So is a wallet's first
# payout within PAYOUT_RECENT_DEPOSIT_WINDOW_SECONDS of a deposit at or above
# DEPOSIT_REVIEW_AMOUNT_THRESHOLD (stolen cards cash out through payouts).
PAYOUT_REVIEW_AMOUNT_THRESHOLD = env.int("PAYOUT_REVIEW_AMOUNT_THRESHOLD", default=500_000)
PAYOUT_RECENT_DEPOSIT_WINDOW_SECONDS = env.int("PAYOUT_RECENT_DEPOSIT_WINDOW_SECONDS", default=86_400)
# A payout whose gateway call failed retryably (or whose answer was lost) is sent again, same
# idempotency key, after backoff_delay(base, max); the schedule is the payout's next_attempt_at.
PAYOUT_RETRY_BASE_SECONDS = env.float("PAYOUT_RETRY_BASE_SECONDS", default=5.0)
PAYOUT_RETRY_MAX_SECONDS = env.float("PAYOUT_RETRY_MAX_SECONDS", default=900.0)
# A payout waiting this long for its worker (its task lost with the broker) is picked up by the sweep.
PAYOUT_STUCK_AFTER_SECONDS = env.int("PAYOUT_STUCK_AFTER_SECONDS", default=60)
# A payout in transit this long (no webhook settled it) is asked of the gateway by reconcile_payouts.
PAYOUT_RECONCILE_AFTER_SECONDS = env.int("PAYOUT_RECONCILE_AFTER_SECONDS", default=259_200)
