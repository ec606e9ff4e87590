"""Seeds the benchmark database through Paydesk's own services (run by bench/run.py, not by hand).

    python bench/seed.py users N BALANCE OUT_FILE    # N users, each with a funded USD wallet,
                                                     # an access token and an API key
    python bench/seed.py payments PER_USER SEED_FILE # tops each seeded user up to PER_USER payments

It runs in a process configured exactly like the server (bench/run.py passes the same environment),
so deposits, payments and the audit trail are as real as the ones the load will add. OUT_FILE gets
one line per user, "<access token> <wallet id> <api key>", the format bench/scenario.lua reads.
Users get no password (tokens and keys only): hashing hundreds of passwords would dominate seeding.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
django.setup()

from apps.accounts.models import User  # noqa: E402
from apps.accounts.services import api_key_create, auth_session_start  # noqa: E402
from apps.gateways.base import GatewayResult  # noqa: E402
from apps.payments.models import Payment  # noqa: E402
from apps.payments.services import payment_create  # noqa: E402
from apps.wallets.services import wallet_create, wallet_deposit_settle, wallet_deposit_start  # noqa: E402

PROGRESS_EVERY = 50


def seed_users(count: int, balance: int, out: Path) -> None:
    lines = []
    started = time.monotonic()
    for n in range(count):
        user = User.objects.create_user(f"bench-{n}@example.com", None)
        wallet = wallet_create(actor=user, user=user, currency="USD")
        # The deposit's two durable steps without the card gateway in between: the gateway's
        # answer is given, so seeding measures nothing but the database.
        txn = wallet_deposit_start(actor=user, user=user, wallet_id=wallet.pk, amount=balance)
        wallet_deposit_settle(actor=user, transaction_id=txn.pk, result=GatewayResult(status="captured"))
        _, key = api_key_create(user=user, name="bench", actor=user)
        lines.append(f"{auth_session_start(user=user).tokens.access} {wallet.pk} {key}")
        if (n + 1) % PROGRESS_EVERY == 0:
            print(f"[seed] {n + 1}/{count} users ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    out.write_text("\n".join(lines) + "\n")


def top_up_payments(per_user: int, seed_file: Path) -> None:
    wallets = [line.split()[1] for line in seed_file.read_text().splitlines() if line.strip()]
    users = User.objects.filter(wallets__pk__in=wallets).order_by("pk")
    created = 0
    for user in users:
        missing = per_user - Payment.objects.filter(owner=user).count()
        for _ in range(max(missing, 0)):
            payment_create(actor=user, owner=user, amount=1000, currency="USD", payment_method="tok_visa")
            created += 1
    print(f"[seed] {created} payments added (at least {per_user} per user)", file=sys.stderr)


if __name__ == "__main__":
    command, number = sys.argv[1], int(sys.argv[2])
    if command == "users":
        seed_users(number, int(sys.argv[3]), Path(sys.argv[4]))
    elif command == "payments":
        top_up_payments(number, Path(sys.argv[3]))
    else:
        raise SystemExit(f"unknown command {command!r}; see the docstring")
