"""Payments in the back office: the review queue, a payment's whole story, approve and deny.

`ReviewAdmin` is the whole queue — payments and deposits held for review — decided the same way.

The admin never writes a payment row. Every page is read-only (no add, change or delete), and a
decision goes through `review_decide` — row lock, capture or void at the gateway, audit record,
cache invalidation and event, exactly as `PUT /api/v1/payments/{id}/review` does — after a
confirmation page that requires a note.
"""

# Importing the modules registers their ModelAdmins with the admin site.
from apps.payments.admin import filters, payments, reviews  # noqa: F401
