"""What Paydesk sent to Authorize.Net (`AuthorizeNetSubmission`): Authorize.Net's idempotency, done here.

Authorize.Net keeps no idempotency key. A call that creates a transaction (a charge, a refund)
instead carries `reference_for(key)` as its `invoiceNumber` and `refId`, and before it goes out
`submission_begin` commits a row for the key. When the key comes again (a retry, a worker that died
mid-call and was redelivered, two processes racing) the row is already there: the caller looks the
first transaction up (by its transId once known, else by the reference) and answers with it instead
of sending a second charge. Behind that, the request's duplicate window makes Authorize.Net itself
answer a resend that slipped through with the first transaction's id.

The rows are written in durable transactions of their own, like a remote system's state: calling a
gateway inside a caller's transaction raises RuntimeError instead of holding its locks.
"""

from __future__ import annotations

import base64
import hashlib

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.gateways.base import GatewayError
from apps.gateways.models import AuthorizeNetSubmission

Operation = AuthorizeNetSubmission.Operation
REFERENCE_LENGTH = 20  # Authorize.Net's limit on invoiceNumber and refId


def reference_for(key: str) -> str:
    """The 20-character reference a key is sent under: 100 bits of its SHA-256, in base32 (A-Z, 2-7).

    A payment id (`pay_` and a 26-character ULID) does not fit in 20 characters; a digest of it
    does, the same every time, and two keys share one only by a collision of 100-bit hashes. The
    key itself travels too, in the order's description, for people reading Authorize.Net's reports.
    """
    digest = hashlib.sha256(key.encode()).digest()
    return base64.b32encode(digest).decode()[:REFERENCE_LENGTH]


def submission_begin(
    *, key: str, operation: str, amount: int, currency: str, ref_trans_id: str = ""
) -> tuple[AuthorizeNetSubmission, bool]:
    """Records that a call with `key` is about to be sent; returns (submission, repeat).

    `repeat` is True when the key was submitted before: the first call may have reached
    Authorize.Net, so look it up before sending again. The same key with other parameters is refused
    (`gateway_idempotency_conflict`, as Stripe's gateway refuses it).
    """
    with transaction.atomic(durable=True):
        submission, created = AuthorizeNetSubmission.objects.select_for_update().get_or_create(
            key=key,
            defaults={
                "reference": reference_for(key),
                "operation": operation,
                "amount": amount,
                "currency": currency,
                "ref_trans_id": ref_trans_id,
            },
        )
        asked = (operation, amount, currency, ref_trans_id)
        if (submission.operation, submission.amount, submission.currency, submission.ref_trans_id) != asked:
            # As Stripe's refusal of a reused key: what the first call did is for `retrieve` to say.
            raise GatewayError(
                "This idempotency key was already used with other parameters.",
                code="gateway_idempotency_conflict",
            )
        AuthorizeNetSubmission.objects.filter(pk=submission.pk).update(
            sends=F("sends") + 1, updated_at=timezone.now()
        )
    return submission, not created


def submission_learn(submission: AuthorizeNetSubmission, trans_id: str) -> None:
    """Keeps the transId Authorize.Net answered for the submission (the first one it ever gave)."""
    if not trans_id or trans_id == "0" or submission.trans_id:
        return
    with transaction.atomic(durable=True):
        AuthorizeNetSubmission.objects.filter(pk=submission.pk, trans_id="").update(trans_id=trans_id)
    submission.trans_id = trans_id


def submission_for(key: str) -> AuthorizeNetSubmission | None:
    return AuthorizeNetSubmission.objects.filter(key=key).first()
