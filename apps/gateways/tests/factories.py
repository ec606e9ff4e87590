"""Shortcuts for the gateway tests: a charge on the simulated gateway and its stored state."""

from apps.gateways.models import SimulatedCharge


def authorize(gateway, token="tok_visa", *, key="pay_1", amount=1000, currency="USD", capture=True):
    return gateway.authorize(
        amount=amount, currency=currency, token=token, idempotency_key=key, capture=capture
    )


def charge_state(reference: str) -> tuple[str, int, int]:
    charge = SimulatedCharge.objects.get(pk=reference)
    return charge.status, charge.amount_captured, charge.amount_refunded
