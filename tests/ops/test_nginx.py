"""docker/nginx.conf, read as nginx reads it: what it tells the web replicas about each request."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = (ROOT / "docker" / "nginx.conf").read_text()
DIRECTIVES = re.sub(r"#[^\n]*", "", CONF)  # comments dropped


def proxied_headers() -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in re.findall(r"proxy_set_header\s+(\S+)\s+([^;]+);", DIRECTIVES):
        headers.setdefault(name.lower(), []).append(value.strip())
    return headers


def test_nginx_overwrites_the_clients_x_forwarded_proto_with_its_own_scheme():
    # A client's "X-Forwarded-Proto: https" over plain HTTP must not reach Django
    # (SECURE_PROXY_SSL_HEADER would call the request secure).
    assert proxied_headers()["x-forwarded-proto"] == ["$scheme"]
    assert "$http_x_forwarded_proto" not in DIRECTIVES


def test_nginx_forwards_the_client_address_and_host_it_saw():
    headers = proxied_headers()
    assert headers["x-forwarded-for"] == ["$proxy_add_x_forwarded_for"]
    assert headers["host"] == ["$host"]
