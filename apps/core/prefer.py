"""The `Prefer` request header (RFC 7240): what a client would like, and saying what was honoured.

    Prefer: respond-async, wait=10

Preferences are comma-separated tokens, matched without regard to case, each optionally with
`=value` and `;`-separated parameters (ignored here). A server may honour or ignore each one; the
ones it honoured are named in the answer's `Preference-Applied` header.
"""

from __future__ import annotations

from typing import Any

PREFER_HEADER = "Prefer"
APPLIED_HEADER = "Preference-Applied"
RESPOND_ASYNC = "respond-async"


def preferences(request: Any) -> set[str]:
    """The names of the preferences the request states (lower-case), from every `Prefer` header."""
    raw = request.headers.get(PREFER_HEADER, "") if hasattr(request, "headers") else ""
    names = set()
    for preference in raw.split(","):
        name = preference.split(";", 1)[0].split("=", 1)[0].strip().lower()
        if name:
            names.add(name)
    return names


def prefers(request: Any, name: str) -> bool:
    return name in preferences(request)


def applied(*names: str) -> dict[str, str]:
    """The answer's header naming the preferences honoured."""
    return {APPLIED_HEADER: ", ".join(names)}
