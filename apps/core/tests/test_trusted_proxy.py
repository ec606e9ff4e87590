"""The client address throttles and the audit trail use: a proxy we trust may name it, nobody else."""

import pytest
from django.test import override_settings

from apps.core.middleware import TrustedProxyMiddleware


def _seen_address(remote_addr, forwarded=None):
    seen = {}

    def view(request):
        seen["ip"] = request.META["REMOTE_ADDR"]
        return None

    from django.test import RequestFactory

    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    request = RequestFactory().get("/api/v1/health", REMOTE_ADDR=remote_addr, **headers)
    TrustedProxyMiddleware(view)(request)
    return seen["ip"]


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_our_proxy_names_the_client():
    assert _seen_address("10.0.0.5", "203.0.113.9") == "203.0.113.9"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_a_client_cannot_spoof_its_address_through_the_proxy():
    # The client sent "X-Forwarded-For: 1.2.3.4"; nginx appended the real peer.
    assert _seen_address("10.0.0.5", "1.2.3.4, 198.51.100.7") == "198.51.100.7"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_a_header_sent_directly_by_a_client_is_ignored():
    assert _seen_address("198.51.100.7", "1.2.3.4") == "198.51.100.7"


@override_settings(TRUSTED_PROXIES=[])
def test_without_trusted_proxies_the_header_is_never_read():
    assert _seen_address("10.0.0.5", "203.0.113.9") == "10.0.0.5"


@pytest.mark.django_db
@override_settings(TRUSTED_PROXIES=["127.0.0.1"])
def test_the_audit_trail_records_the_forwarded_client(client):
    from apps.audit.models import AuditLog

    client.post(
        "/api/v1/auth/login",
        {"email": "nobody@example.com", "password": "wrong password"},
        content_type="application/json",
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.50",
    )
    assert AuditLog.objects.get(action="user.login_failed").ip == "203.0.113.50"
