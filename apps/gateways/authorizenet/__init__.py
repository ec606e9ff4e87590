"""Authorize.Net behind the gateway interface (PAYMENT_GATEWAY=authorizenet); see `gateway`.

Modules: `wire` (the SDK's XML bindings, and the HTTP with timeouts), `messages` (the requests),
`answers` (reading the answers), `codes` (Authorize.Net's codes in Paydesk's words), `submissions`
(idempotency by reference), `lookup` (finding a transaction by its reference), `gateway`.
"""

from apps.gateways.authorizenet.gateway import AuthorizeNetGateway

__all__ = ["AuthorizeNetGateway"]
