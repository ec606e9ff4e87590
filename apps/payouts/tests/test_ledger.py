"""`verify_ledger` proves the payouts_in_transit account against the open payouts."""

import pytest
from django.core.management import CommandError, call_command

from apps.payouts.models import Payout
from apps.payouts.services import payout_create

pytestmark = pytest.mark.django_db


def test_verify_ledger_names_an_in_transit_balance_the_open_payouts_do_not_explain(wallet):
    payout = payout_create(
        actor=None, user=wallet.user, wallet_id=wallet.pk, amount=700, destination="btok_success"
    )
    call_command("verify_ledger")  # pending: 700 in transit, one open payout of 700

    # A payout closed without its reversing entry (as a bug or a hand-edit would leave it).
    Payout.objects.filter(pk=payout.pk).update(status=Payout.Status.CANCELED)

    with pytest.raises(CommandError, match="payouts_in_transit account holds 700 USD but the open payouts"):
        call_command("verify_ledger")
