import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import ApiKey, User
from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent

pytestmark = pytest.mark.django_db

KEY = re.compile(r"pdk_[A-Za-z0-9]{40}")


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seed_demo_creates_one_user_per_role_and_a_merchant_key():
    output = seed()

    admin = User.objects.get(email="admin@paydesk.local")
    reviewer = User.objects.get(email="reviewer@paydesk.local")
    customer = User.objects.get(email="customer@paydesk.local")
    merchant = User.objects.get(email="merchant@paydesk.local")
    assert (admin.is_superuser, admin.is_staff, admin.roles) == (True, True, ["admin"])
    assert (reviewer.is_superuser, reviewer.is_staff, reviewer.roles) == (False, True, ["reviewer"])
    assert (customer.is_staff, customer.roles) == (False, ["customer"])
    assert merchant.roles == ["customer"]
    assert admin.check_password("paydesk-demo-2024")
    secret = KEY.search(output).group()
    assert ApiKey.objects.get(user=merchant).hashed_key != secret
    assert "/admin/" in output
    assert "paydesk-demo-2024" in output


def test_the_printed_key_and_password_work(api_client):
    secret = KEY.search(seed("--password", "another-demo-passphrase")).group()

    assert api_client.get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Api-Key {secret}").json()["email"] == (
        "merchant@paydesk.local"
    )
    login = api_client.post(
        "/api/v1/auth/login", {"email": "customer@paydesk.local", "password": "another-demo-passphrase"}
    )
    assert login.status_code == 200


def test_running_it_twice_creates_nothing_twice():
    seed()
    counts = (
        User.objects.count(),
        ApiKey.objects.count(),
        AuditLog.objects.count(),
        OutboxEvent.objects.count(),
    )

    output = seed()

    assert (
        User.objects.count(),
        ApiKey.objects.count(),
        AuditLog.objects.count(),
        OutboxEvent.objects.count(),
    ) == counts
    assert not KEY.search(output)
    assert "exists" in output
    assert "--new-api-key" in output


def test_new_api_key_issues_a_fresh_one():
    first = KEY.search(seed()).group()

    second = KEY.search(seed("--new-api-key")).group()

    assert second != first
    assert ApiKey.objects.filter(user__email="merchant@paydesk.local").count() == 2


def test_a_weak_password_is_refused_with_a_reason():
    with pytest.raises(CommandError, match="too weak"):
        seed("--password", "short")

    assert not User.objects.exists()


def test_help_describes_the_options(capsys):
    with pytest.raises(SystemExit):
        call_command("seed_demo", "--help")

    help_text = capsys.readouterr().out
    assert "--password" in help_text
    assert "--new-api-key" in help_text
