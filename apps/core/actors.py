"""Who performs a change: the `actor` every service takes and the audit trail records.

An actor is the request's principal — a user (JWT) or an API key — or None for the system
(workers, beat, operators' commands). Core sits below the apps that define those models, so the
type is a protocol: anything with a primary key; `apps.audit` tells the kinds apart when it records.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias


class Principal(Protocol):
    """A user or an API key (apps.accounts), as services see it."""

    @property
    def pk(self) -> Any: ...


Actor: TypeAlias = Principal | None
