import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

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


def _login_lines(output: str) -> dict[str, str]:
    return {
        match["email"]: match["shown"]
        for match in re.finditer(r"^  (?P<email>\S+@paydesk\.local)\s+password: (?P<shown>.+)$", output, re.M)
    }


def test_a_second_run_still_says_how_to_log_in(api_client):
    seed()

    output = seed()

    lines = _login_lines(output)
    assert set(lines) == {
        "admin@paydesk.local",
        "reviewer@paydesk.local",
        "customer@paydesk.local",
        "merchant@paydesk.local",
    }
    assert set(lines.values()) == {"paydesk-demo-2024"}
    assert output.rstrip().splitlines()[-1].startswith("Merchant API key: exists")
    login = api_client.post(
        "/api/v1/auth/login", {"email": "customer@paydesk.local", "password": lines["customer@paydesk.local"]}
    )
    assert login.status_code == 200


def test_a_password_changed_since_is_neither_shown_nor_claimed():
    seed()
    customer = User.objects.get(email="customer@paydesk.local")
    customer.set_password("chosen-by-the-customer-42")
    customer.save()

    lines = _login_lines(seed())

    assert "chosen-by-the-customer-42" not in lines["customer@paydesk.local"]
    assert "paydesk-demo-2024" not in lines["customer@paydesk.local"]
    assert "changed since" in lines["customer@paydesk.local"]
    assert lines["admin@paydesk.local"] == "paydesk-demo-2024"


@override_settings(SETTINGS_MODULE="config.settings.production")
def test_seed_demo_refuses_to_run_under_production_settings():
    with pytest.raises(CommandError, match="refuses to run under production settings"):
        seed()

    assert not User.objects.exists()
    assert not ApiKey.objects.exists()
    assert not AuditLog.objects.exists()
    assert not OutboxEvent.objects.exists()
