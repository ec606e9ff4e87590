"""Where a webhook may be sent: the URL rules, checked when an endpoint is saved and again, after
DNS resolution, each time a connection is opened (apps.events.transport connects to the very
address checked here, so a name that resolves differently later never reaches an internal one).

Refused: any scheme but http(s), credentials-free hosts only as names or literal addresses, and
every address that is not globally routable: loopback, private (RFC 1918, unique-local fc00::/7),
link-local (169.254/16 with the cloud metadata service, fe80::/10), unspecified, multicast,
reserved, shared address space (100.64/10: Alibaba's metadata service), and the same inside an
IPv4-mapped, 6to4, Teredo or NAT64 (64:ff9b::/96) IPv6 address. WEBHOOK_ALLOW_PRIVATE_URLS=true
lifts the address rule (tests, local development); the scheme rule stays.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

MAX_URL_LENGTH = 2048
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Names that are internal by definition, whatever a resolver answers for them.
_INTERNAL_NAMES = ("localhost", "metadata.google.internal", "metadata")
_INTERNAL_SUFFIXES = (".localhost", ".internal", ".local")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The URL or an address it resolves to may not receive webhooks; the message says why
    (safe to show its owner: it names the address, never a secret)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # a name, or a literal address without brackets
    port: int


def private_urls_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_URLS", False))


def parse_url(url: object) -> Target:
    """The URL's scheme, host and port, or AddressRefused when it is not an absolute http(s) URL."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise AddressRefused(f"url must be an http or https URL of at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise AddressRefused("url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise AddressRefused("url is not a valid URL (its host or port cannot be read)")
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("url must use http or https")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise AddressRefused("url has no host")
    return Target(scheme=parts.scheme, host=host, port=port or (443 if parts.scheme == "https" else 80))


def refusal_reason(address: IPAddress) -> str | None:
    """Why this address may not receive webhooks, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            reason = refusal_reason(embedded)
            return f"{reason} (inside {address})" if reason else None
    for reason, flag in (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    ):
        if flag:
            return reason
    return None


def check_address(address: IPAddress) -> None:
    if private_urls_allowed():
        return
    reason = refusal_reason(address)
    if reason:
        raise AddressRefused(f"the address {address} is {reason}: webhooks go to public addresses only")


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def check_url(url: object) -> Target:
    """The rules an endpoint's URL must pass when it is saved: the scheme, and the address when the
    host is one (or a name internal by definition, or a name that resolves now to a refused
    address). A name that does not resolve yet is accepted: it is checked at every delivery."""
    target = parse_url(url)
    if private_urls_allowed():
        return target
    literal = literal_address(target.host)
    if literal is not None:
        check_address(literal)
        return target
    name = target.host.lower()
    if name in _INTERNAL_NAMES or name.endswith(_INTERNAL_SUFFIXES) or "." not in name:
        raise AddressRefused(
            f"the host {target.host} is an internal name: webhooks go to public addresses only"
        )
    try:
        addresses = resolve(target.host, target.port)
    except OSError:
        return target
    for address in addresses:
        check_address(address)
    return target


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (a literal address: itself). The one DNS look-up of this
    module: the delivery path checks and connects to exactly what it returns."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, IPAddress] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        seen.setdefault(str(address), address)
    return list(seen.values())


def allowed_addresses(host: str, port: int) -> list[IPAddress]:
    """The addresses to connect to for `host`: all it resolves to, each checked; AddressRefused if
    any is refused (a name with one internal address among public ones is refused whole)."""
    addresses = resolve(host, port)
    for address in addresses:
        check_address(address)
    return addresses
