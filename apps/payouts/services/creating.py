"""Creating and canceling payouts: the owner's requests.

A new payout's destination is asked of the gateway first, outside any transaction (a token it does
not know is a 400 and nothing is written). Then one call of `payout_create_v1` locks the wallet,
judges the risk rules, moves the money into transit and writes the payout, its event and its audit
row. The risk rules (held for review: `pending`, money in transit, nothing sent until a reviewer
approves) are judged on the locked wallet:
- the amount is at or above PAYOUT_REVIEW_AMOUNT_THRESHOLD (`amount_over_threshold`);
- it is the wallet's first payout since a deposit at or above DEPOSIT_REVIEW_AMOUNT_THRESHOLD
  completed within PAYOUT_RECENT_DEPOSIT_WINDOW_SECONDS (`first_payout_after_large_deposit`):
  money in by card and straight out to a bank is how stolen cards are cashed out.
A payout not held is sent by the worker once its `payout.created` event is delivered
(`apps.payouts.consumers`).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from apps.accounts.models import User
from apps.core.actors import Actor
from apps.core.ids import new_pk
from apps.gateways import get_gateway
from apps.gateways.base import GatewayError, PayoutDestination, PayoutsNotSupported, UnknownPaymentMethod
from apps.payouts.errors import DestinationInvalid, PayoutsUnsupported
from apps.payouts.locks import lock_payout
from apps.payouts.models import Payout
from apps.payouts.selectors import payout_get
from apps.payouts.services.booking import NewPayout, book_payout_create, book_payout_reversal
from apps.wallets.locks import retry_on_lock_conflict

logger = logging.getLogger(__name__)
S = Payout.Status


def payout_create(
    *,
    actor: Actor,
    user: User,
    wallet_id: str,
    amount: int,
    destination: str,
    description: str | None = None,
) -> Payout:
    """Creates a payout of `amount` from the user's wallet to `destination` (a gateway's bank account
    token): the amount leaves the wallet at once, held in transit. Refuses an unknown destination
    (`destination_invalid`), a frozen wallet (`wallet_inactive`), a short balance
    (`insufficient_funds`), another user's wallet (404), each before anything is written."""
    gateway = str(settings.PAYMENT_GATEWAY)
    shown = payout_destination(gateway=gateway, destination=destination)
    return _create(
        actor=actor,
        new=NewPayout(
            payout_id=new_pk(Payout),
            user_id=user.pk,
            wallet_id=wallet_id,
            amount=amount,
            description=description,
            destination_token=destination,
            destination_type=shown.type,
            destination_last4=shown.last4,
            gateway=gateway,
        ),
    )


def payout_destination(*, gateway: str, destination: str) -> PayoutDestination:
    """What the gateway shows of a destination; 400 when it knows no such token or sends no payouts.
    A gateway that cannot answer now (an outage) lets the payout through: the worker's call decides."""
    try:
        return get_gateway(gateway).payout_destination_check(destination=destination)
    except UnknownPaymentMethod:
        raise DestinationInvalid(param="destination") from None
    except PayoutsNotSupported as exc:
        raise PayoutsUnsupported(str(exc), param="destination") from None
    except GatewayError as exc:
        logger.warning("payout destination check skipped, the gateway could not answer: %s", exc.code)
        return PayoutDestination()


@retry_on_lock_conflict()
@transaction.atomic(durable=True)
def _create(*, actor: Actor, new: NewPayout) -> Payout:
    return book_payout_create(actor=actor, new=new)


@retry_on_lock_conflict()
@transaction.atomic(durable=True)
def payout_cancel(*, actor: Actor, user: User, payout_id: str) -> Payout:
    """Cancels the user's `pending` payout (held for review or not yet sent) and puts its amount back
    into the wallet; any other state is a 409 `payout_unexpected_state`. Under the payout's row lock,
    so it can't race the worker sending it: once the worker has taken it (`in_transit`), it is too late."""
    payout_get(user=user, payout_id=payout_id)  # 404 for another user's payout
    payout = lock_payout(payout_id)
    book_payout_reversal(actor=actor, payout=payout, to=S.CANCELED, action="cancel")
    return payout
