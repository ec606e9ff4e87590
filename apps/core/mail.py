"""An email of text and HTML whose bytes are composed directly, not through `email`'s generator.

Django's `EmailMultiAlternatives.message()` builds a tree of `email.mime` objects and flattens it
with the standard library's generator, which folds and re-encodes every header through
`email.header.Header`: about 1 ms of CPU per message, most of a notification's cost once its
templates are compiled (bench/worker_profile.py). Paydesk sends one shape only (text/plain with a
text/html alternative, UTF-8), so `PreparedEmail` composes that shape's bytes itself: ASCII headers
as they are, any other header RFC 2047-encoded (by `email.header`, which only then runs), and each
part as Django writes it: 7bit or 8bit text, quoted-printable (encoded in C) when a line is too
long for SMTP — so a message saved to a file (`make run`) still reads as text. It is still a Django
`EmailMessage`: every backend sends it (SMTP, the console, the file and locmem backends call
`message()` and get these bytes), and what it says is what Django's own message would say (the
tests parse both and compare).
"""

from __future__ import annotations

import binascii
import secrets
from email.header import Header
from email.utils import formatdate, getaddresses, make_msgid
from typing import Any

from django.conf import settings
from django.core.mail import BadHeaderError, EmailMultiAlternatives
from django.core.mail.message import sanitize_address
from django.core.mail.utils import DNS_NAME

LINE = 76  # a header line's length before it is folded
SMTP_LINE = 998  # RFC 5322: the longest line a message may carry


class ComposedMessage:
    """The part of `email.message.Message` that Django's backends use: the bytes, and a header."""

    def __init__(self, headers: list[tuple[str, str]], body: bytes) -> None:
        self._headers, self._body = headers, body

    def get(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self._headers if key.lower() == wanted), default)

    __getitem__ = get

    def as_bytes(self, unixfrom: bool = False, linesep: str = "\n") -> bytes:
        head = "".join(f"{name}: {value}\r\n" for name, value in self._headers).encode("ascii")
        data = head + b"\r\n" + self._body
        return data if linesep == "\r\n" else data.replace(b"\r\n", linesep.encode("ascii"))

    def as_string(self, unixfrom: bool = False, linesep: str = "\n") -> str:
        return self.as_bytes(linesep=linesep).decode("ascii")


class PreparedEmail(EmailMultiAlternatives):
    """A text email with one HTML alternative: `PreparedEmail(subject=…, body=…, html=…, to=[…])`."""

    def __init__(self, *, html: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.attach_alternative(html, "text/html")

    def message(self) -> Any:  # this shape's ComposedMessage, else Django's own message
        encoding = self.encoding or settings.DEFAULT_CHARSET
        if self.attachments or len(self.alternatives) != 1 or str(encoding).lower() != "utf-8":
            return super().message()  # not the one shape composed here
        extra = {name.lower(): (name, value) for name, value in self.extra_headers.items()}
        headers = [
            ("Subject", _header("Subject", str(self.subject))),
            ("From", _addresses("From", [extra.pop("from", ("", self.from_email))[1]])),
        ]
        for name, addresses in (("To", self.to), ("Cc", self.cc), ("Reply-To", self.reply_to)):
            extra.pop(name.lower(), None)
            if addresses:
                headers.append((name, _addresses(name, addresses)))
        date = extra.pop("date", ("", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)))[1]
        message_id = extra.pop("message-id", ("", make_msgid(domain=DNS_NAME)))[1]
        headers += [("Date", _header("Date", date)), ("Message-ID", _header("Message-ID", message_id))]
        headers += [(name, _header(name, value)) for name, value in extra.values()]
        boundary = f"=={secrets.token_hex(10)}=="  # the header stays within 78 characters
        headers += [
            ("MIME-Version", "1.0"),
            ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
        ]
        html = self.alternatives[0]
        parts = [_part("plain", str(self.body)), _part(html[1].split("/", 1)[1], str(html[0]))]
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + part for part in parts)
        return ComposedMessage(headers, body + b"--" + boundary.encode() + b"--\r\n")


def _header(name: str, value: str) -> str:
    """The header's value as Django's message would carry it: a newline in it is refused (header
    injection, `BadHeaderError` as Django raises it); plain ASCII that fits on a line is sent as it
    is, anything else RFC 2047-encoded and folded by `email.header`."""
    value = str(value)
    if "\n" in value or "\r" in value:
        raise BadHeaderError(f"Header values can't contain newlines (got {value!r} for header {name!r})")
    if value.isascii() and len(name) + 2 + len(value) <= LINE:
        return value
    charset = None if value.isascii() else "utf-8"
    return Header(value, charset, header_name=name).encode(linesep="\r\n")


def _addresses(name: str, addresses: list[str]) -> str:
    """As Django's message: ASCII addresses as they are; others encoded address by address."""
    value = _header(name, ", ".join(str(address) for address in addresses)) if addresses else ""
    if all(str(address).isascii() for address in addresses):
        return value
    return ", ".join(sanitize_address(address, "utf-8") for address in getaddresses(addresses))


def _part(subtype: str, text: str) -> bytes:
    # Text in its canonical form (RFC 2045): CRLF line breaks, as Django's generator writes them.
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    if any(len(line) > SMTP_LINE for line in data.split(b"\r\n")):
        encoding, data = "quoted-printable", binascii.b2a_qp(data, istext=True)  # keeps the CRLFs
    else:
        encoding = "7bit" if data.isascii() else "8bit"
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
    head += f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    return head.encode("ascii") + data + b"\r\n"  # (this CRLF belongs to the next boundary line)
