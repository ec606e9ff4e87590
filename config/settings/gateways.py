"""The card gateways' settings, part of `base` (which has read `.env` before importing this):
which gateway (PAYMENT_GATEWAY), Stripe's and Authorize.Net's, and the circuit breaker in front of
every gateway, and how a payment's gateway step is retried. `.env.example` documents each one."""

import environ

env = environ.Env()

PAYMENT_GATEWAY = env("PAYMENT_GATEWAY", default="simulated")
STRIPE_API_KEY = env("STRIPE_API_KEY", default="")
# Tests point this at a local server that speaks Stripe's wire format.
STRIPE_API_BASE = env("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
# Stripe's search lags creation; reconciliation waits this long before "not found" means "never charged".
STRIPE_SEARCH_GRACE_SECONDS = env.int("STRIPE_SEARCH_GRACE_SECONDS", default=120)
# Authorize.Net (PAYMENT_GATEWAY=authorizenet): the account's API login id and transaction key, and
# the XML API's endpoint: the sandbox by default, https://api2.authorize.net/xml/v1/request.api for
# real money (tests point it at a local server that speaks the XML API).
AUTHORIZENET_API_LOGIN_ID = env("AUTHORIZENET_API_LOGIN_ID", default="")
AUTHORIZENET_TRANSACTION_KEY = env("AUTHORIZENET_TRANSACTION_KEY", default="")
AUTHORIZENET_API_URL = env("AUTHORIZENET_API_URL", default="https://apitest.authorize.net/xml/v1/request.api")
# Seconds to connect, and to wait for an answer once the request went out (a call that moves money
# and gets no answer in time is "unknown": the payment waits in `reconcile`).
AUTHORIZENET_CONNECT_TIMEOUT_SECONDS = env.float("AUTHORIZENET_CONNECT_TIMEOUT_SECONDS", default=3.0)
AUTHORIZENET_TIMEOUT_SECONDS = env.float("AUTHORIZENET_TIMEOUT_SECONDS", default=10.0)
# Authorize.Net's duplicate window (seconds, at most 28800): a charge or refund sent again with the
# same invoice number and amount within it is answered with the first one's transaction id.
AUTHORIZENET_DUPLICATE_WINDOW_SECONDS = env.int("AUTHORIZENET_DUPLICATE_WINDOW_SECONDS", default=28_800)
# How many days of settled batches reconciliation searches for a charge whose answer was lost, when
# it is no longer among the unsettled transactions (settlement runs daily).
AUTHORIZENET_SETTLED_LOOKBACK_DAYS = env.int("AUTHORIZENET_SETTLED_LOOKBACK_DAYS", default=3)
# A charge sent less than this long ago and not found at Authorize.Net may still be in flight there:
# reconciliation asks again later instead of concluding "never charged".
AUTHORIZENET_NOT_FOUND_GRACE_SECONDS = env.int("AUTHORIZENET_NOT_FOUND_GRACE_SECONDS", default=120)
# A gateway that failed this many times in a row is not called for the cool-down period.
GATEWAY_CIRCUIT_FAILURE_THRESHOLD = env.int("GATEWAY_CIRCUIT_FAILURE_THRESHOLD", default=5)
GATEWAY_CIRCUIT_COOLDOWN_SECONDS = env.int("GATEWAY_CIRCUIT_COOLDOWN_SECONDS", default=30)
# Gateway steps that failed with a retryable error: attempts in all, and the backoff between them.
PAYMENT_RETRY_MAX_ATTEMPTS = env.int("PAYMENT_RETRY_MAX_ATTEMPTS", default=5)
PAYMENT_RETRY_BASE_SECONDS = env.float("PAYMENT_RETRY_BASE_SECONDS", default=2.0)
PAYMENT_RETRY_MAX_SECONDS = env.float("PAYMENT_RETRY_MAX_SECONDS", default=300.0)
# A pending/processing payment nobody has touched for this long (past its retry) is reconciled.
PAYMENT_STUCK_AFTER_SECONDS = env.int("PAYMENT_STUCK_AFTER_SECONDS", default=600)
