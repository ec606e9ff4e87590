"""`PreparedEmail` says exactly what Django's own message says, in bytes composed directly."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage as ParsedMessage

import pytest
from django.core import mail
from django.core.mail import BadHeaderError, EmailMultiAlternatives

from apps.core.mail import PreparedEmail

HEADERS = ("Subject", "From", "To", "Cc", "Reply-To", "Date", "Message-ID", "X-Paydesk")


def _both(**kwargs) -> tuple[ParsedMessage, ParsedMessage]:
    """The same email composed by Django and by PreparedEmail, each parsed back from its bytes."""
    html = kwargs.pop("html")
    django_email = EmailMultiAlternatives(**kwargs)
    django_email.attach_alternative(html, "text/html")
    ours = PreparedEmail(html=html, **kwargs)
    return tuple(  # type: ignore[return-value]
        email.message_from_bytes(message.message().as_bytes(linesep="\r\n"), policy=email.policy.default)
        for message in (django_email, ours)
    )


def _said(parsed: ParsedMessage) -> dict[str, object]:
    """What a reader sees: the decoded headers, and each part's type, charset and decoded text."""
    parts = [part for part in parsed.walk() if not part.is_multipart()]
    return {
        "headers": {name: str(parsed[name]) for name in HEADERS if parsed[name] is not None},
        "type": parsed.get_content_type(),
        "parts": [(p.get_content_type(), p.get_content_charset(), p.get_content()) for p in parts],
    }


@pytest.mark.parametrize(
    ("subject", "body", "html", "to"),
    [
        (
            "You sent 1.00 USD to Bob",
            "Hi Ada,\n\nYou sent 1.00 USD.\n",
            "<p>Hi <b>Ada</b></p>",
            "ada@example.com",
        ),
        ("Réglé : 12,50 € reçus de Zoë", "Bonjour Zoë,\nà bientôt ✓\n", "<p>Zoë ✓</p>", "zoe@example.com"),
        (
            "A subject long enough that every mail reader would fold it over more than one line, "
            "and then some more words to be sure of it",
            "x" * 2000 + "\n" + "a line after a very long one\n",
            "<p>" + "y" * 3000 + "</p>",
            "Zoë Dupont <zoe@exämple.com>",
        ),
    ],
    ids=["ascii", "accents", "long-and-idn"],
)
def test_a_prepared_email_reads_exactly_as_djangos_own(subject, body, html, to):
    # given / when
    theirs, ours = _both(
        subject=subject,
        body=body,
        html=html,
        from_email="Paydesk <no-reply@paydesk.local>",
        to=[to],
        cc=["ops@example.com"],
        reply_to=["help@example.com"],
        headers={
            "Message-ID": "<ntf_01@paydesk.local>",
            "Date": "Mon, 07 Dec 2026 20:00:00 -0000",
            "X-Paydesk": "1",
        },
    )

    # then
    assert _said(ours) == _said(theirs)
    assert _said(ours)["type"] == "multipart/alternative"
    assert [part[0] for part in _said(ours)["parts"]] == ["text/plain", "text/html"]  # type: ignore[index]


def test_its_lines_end_in_crlf_headers_are_ascii_and_no_line_is_too_long_for_smtp():
    message = PreparedEmail(
        subject="Réglé : " + "long words " * 20,
        body="é" * 500 + "\nshort line\n",  # 1,000 bytes on one line: quoted-printable
        html="<p>" + "ü" * 400 + "</p>",  # 807 bytes: sent as it is (8bit)
        to=["ada@example.com"],
    ).message()

    data = message.as_bytes(linesep="\r\n")

    head, _, body = data.partition(b"\r\n\r\n")
    assert head.isascii()
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    lines = data.split(b"\r\n")
    assert b"\n" not in b"".join(lines)  # no bare line feed anywhere
    assert max(len(line) for line in lines) <= 998
    assert b"Content-Transfer-Encoding: quoted-printable" in body
    assert b"Content-Transfer-Encoding: 8bit" in body


def test_a_message_saved_to_a_file_reads_as_text():
    """`make run` saves each email whole to a file: its text and HTML (a reset link) stay legible."""
    message = PreparedEmail(
        subject="Reset your password",
        body="Open https://paydesk.local/reset?token=abc to choose a new one.\n",
        html='<p><a href="https://paydesk.local/reset?token=abc">Reset</a> — for Zoë</p>',
        to=["zoe@example.com"],
    ).message()

    text = message.as_bytes(linesep="\n").decode("utf-8")

    assert "https://paydesk.local/reset?token=abc to choose" in text
    assert '<a href="https://paydesk.local/reset?token=abc">Reset</a> — for Zoë' in text


def test_a_newline_in_a_header_is_refused_like_django_refuses_it():
    with pytest.raises(BadHeaderError):
        PreparedEmail(
            subject="hi\nBcc: victim@example.com", body="b", html="<p>b</p>", to=["a@example.com"]
        ).message()
    with pytest.raises(BadHeaderError):
        PreparedEmail(
            subject="hi", body="b", html="<p>b</p>", to=["a@example.com\r\nBcc: x@example.com"]
        ).message()


def test_each_message_gets_its_own_date_message_id_and_boundary():
    first, second = (
        PreparedEmail(subject="s", body="b", html="<p>b</p>", to=["a@example.com"]).message()
        for _ in range(2)
    )

    assert first["Message-ID"] != second["Message-ID"]
    assert first["Date"]
    assert first["Content-Type"] != second["Content-Type"]  # the boundary


def test_it_goes_out_through_djangos_backends(settings):
    # given the tests' locmem backend
    PreparedEmail(subject="Hello", body="text", html="<p>html</p>", to=["a@example.com"]).send()

    # then the outbox has it as any Django email, with its HTML alternative
    (sent,) = mail.outbox
    assert (sent.subject, sent.body, sent.to) == ("Hello", "text", ["a@example.com"])
    assert sent.alternatives[0][0] == "<p>html</p>"
