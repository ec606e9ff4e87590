"""Settings of the events API and outbound webhooks (apps/events), imported by base.py (which is at
the size a module may reach). Every value comes from the environment; `.env.example` lists them."""

import environ

env = environ.Env()  # base.py has read .env into the environment already

# Events (`GET /events`) are kept this many days (at least 30: API.md), then purged by a beat task.
EVENTS_RETENTION_DAYS = max(env.int("EVENTS_RETENTION_DAYS", default=30), 30)
# http(s) to loopback, private, link-local and other internal addresses is allowed (tests, local
# development only): the endpoint URL rules are checked at creation and at every connect otherwise.
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=False)
# A delivery is retried after OUTBOUND_WEBHOOK_RETRY_BASE_SECONDS plus backoff_delay (full jitter,
# ceiling doubling up to ..._MAX_SECONDS) until ..._WINDOW_SECONDS after the event, then `failed`.
OUTBOUND_WEBHOOK_RETRY_BASE_SECONDS = env.float("OUTBOUND_WEBHOOK_RETRY_BASE_SECONDS", default=60.0)
OUTBOUND_WEBHOOK_RETRY_MAX_SECONDS = env.float("OUTBOUND_WEBHOOK_RETRY_MAX_SECONDS", default=6 * 3600.0)
OUTBOUND_WEBHOOK_RETRY_WINDOW_SECONDS = env.int("OUTBOUND_WEBHOOK_RETRY_WINDOW_SECONDS", default=3 * 86_400)
# An endpoint every attempt to which has failed for this long is disabled and its owner emailed.
OUTBOUND_WEBHOOK_DISABLE_AFTER_SECONDS = env.int("OUTBOUND_WEBHOOK_DISABLE_AFTER_SECONDS", default=3 * 86_400)
# One POST: the whole exchange within this many seconds, at most this much of the answer read.
OUTBOUND_WEBHOOK_TIMEOUT_SECONDS = env.float("OUTBOUND_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
OUTBOUND_WEBHOOK_MAX_RESPONSE_BYTES = env.int("OUTBOUND_WEBHOOK_MAX_RESPONSE_BYTES", default=65_536)
# A worker's claim on a delivery it is sending; another worker may take it over after this.
OUTBOUND_WEBHOOK_LEASE_SECONDS = env.int("OUTBOUND_WEBHOOK_LEASE_SECONDS", default=60)
# How often the beat sweep looks for due deliveries (retries, and sends lost with the broker).
OUTBOUND_WEBHOOK_SWEEP_SECONDS = env.float("OUTBOUND_WEBHOOK_SWEEP_SECONDS", default=10.0)

# The queue of sends (a slow merchant must not hold up emails or payments) and the beat tasks.
EVENTS_ROUTED_QUEUES = {"outbound_webhooks": ["apps.events.tasks.send_webhook_deliveries"]}
EVENTS_BEAT_SCHEDULE = {
    "webhook-deliveries-sweep": {
        "task": "apps.events.tasks.sweep_webhook_deliveries",
        "schedule": OUTBOUND_WEBHOOK_SWEEP_SECONDS,
    },
    "events-purge": {"task": "apps.events.tasks.purge_events", "schedule": 3600.0},
}
