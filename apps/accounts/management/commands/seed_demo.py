"""Demo data for a fresh install: one user per role and a merchant with an API key. Idempotent."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.errors import WeakPassword
from apps.accounts.models import Roles, User
from apps.accounts.selectors import user_get_by_email
from apps.accounts.services import api_key_create, user_register

# bandit B105: a demo password, printed on purpose
DEFAULT_PASSWORD = "paydesk-demo-2024"  # noqa: S105  # nosec B105
MERCHANT_KEY_NAME = "Demo merchant key"
PRODUCTION_SETTINGS = "config.settings.production"

# email, full name, roles, is_staff, is_superuser
DEMO_USERS = (
    ("admin@paydesk.local", "Demo Admin", (Roles.ADMIN,), True, True),
    ("reviewer@paydesk.local", "Demo Reviewer", (Roles.REVIEWER,), True, False),
    ("customer@paydesk.local", "Demo Customer", (Roles.CUSTOMER,), False, False),
    ("merchant@paydesk.local", "Demo Merchant", (Roles.CUSTOMER,), False, False),
)


class Command(BaseCommand):
    help = (
        "Creates demo users (admin, staff reviewer, customer, merchant) and an API key for the "
        "merchant, and prints how to log in. Safe to run again: users and keys that exist are "
        "kept as they are, passwords included."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--password",
            default=DEFAULT_PASSWORD,
            help=f"Password of the demo users it creates (default: {DEFAULT_PASSWORD}).",
        )
        parser.add_argument(
            "--new-api-key",
            action="store_true",
            help="Issue a fresh API key for the merchant even if it already has one.",
        )
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where the server runs, for the printed links (default: http://127.0.0.1:8000).",
        )

    def handle(self, *args, password: str, new_api_key: bool, base_url: str, **options) -> None:
        if _settings_module() == PRODUCTION_SETTINGS:
            raise CommandError(
                "seed_demo refuses to run under production settings: it creates users with a "
                "published password and an admin. Run it with config.settings.local (make run)."
            )
        users = {}
        for email, full_name, roles, is_staff, is_superuser in DEMO_USERS:
            user = user_get_by_email(email=email)
            if user is None:
                user = self._create_user(
                    email=email,
                    password=password,
                    full_name=full_name,
                    roles=roles,
                    is_staff=is_staff,
                    is_superuser=is_superuser,
                )
                self.stdout.write(self.style.SUCCESS(f"created {email} ({', '.join(roles)})"))
            else:
                self.stdout.write(f"exists  {email}")
            users[email] = user
        merchant = users["merchant@paydesk.local"]
        secret = None
        if new_api_key or not merchant.api_keys.filter(revoked_at__isnull=True).exists():
            _, secret = api_key_create(user=merchant, name=MERCHANT_KEY_NAME, actor=None)

        base_url = base_url.rstrip("/")
        self.stdout.write("")
        self.stdout.write(f"Admin:    {base_url}/admin/  (admin@paydesk.local, reviewer@paydesk.local)")
        self.stdout.write(f"API docs: {base_url}/api/v1/docs  (and {base_url}/ links both)")
        self.stdout.write(f'Log in:   POST {base_url}/api/v1/auth/login {{"email": ..., "password": ...}}')
        for email, *_ in DEMO_USERS:
            self.stdout.write(f"  {email:<24} password: {self._password_shown(users[email], password)}")
        if secret:
            self.stdout.write(self.style.WARNING(f"Merchant API key (shown once, store it now): {secret}"))
            self.stdout.write(f"  curl -H 'Authorization: Api-Key {secret}' {base_url}/api/v1/auth/me")
        else:
            self.stdout.write(
                "Merchant API key: exists, printed when it was created. --new-api-key issues a fresh one."
            )

    @staticmethod
    def _password_shown(user: User, password: str) -> str:
        """The demo password while it still opens the account (so a second run says how to log
        in), never a password someone chose since."""
        if user.check_password(password):
            return password
        return "(changed since it was seeded; manage.py changepassword <email> sets a new one)"

    def _create_user(self, *, password: str, **fields) -> User:
        try:
            return user_register(password=password, **fields)
        except WeakPassword as exc:
            raise CommandError(f"--password is too weak: {exc.message}")


def _settings_module() -> str | None:
    # override_settings hides SETTINGS_MODULE (None) unless it overrides it: then the process's own.
    return settings.SETTINGS_MODULE or os.environ.get("DJANGO_SETTINGS_MODULE")
