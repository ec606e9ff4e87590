"""Authorize.Net's XML API on the wire: the official SDK's bindings build and parse, `requests` carries.

The SDK (`authorizenet`, its `apicontractsv1` PyXB bindings) is used only for what it does well:
building a request document and reading an answer into typed objects. Its `execute()` is not used:
it posts with no timeout at all (sdk-python#175) and keeps the endpoint in a class attribute that
every controller's constructor resets to the sandbox (sdk-python#173), so two threads of one process
could send each other's calls to the wrong place. Here each `AnetClient` holds its own endpoint and
credentials and posts with a connect and a read timeout.

Importing the SDK needs care, done once here:
- PyXB validates an answer against the SDK's copy of the schema while parsing. An element that copy
  does not know (Authorize.Net adds fields over time; its answers already carry
  `SupplementalDataQualificationIndicator`) makes strict parsing drop the rest of the enclosing
  element without an error: an approved answer would come back without its transId. Parsing is
  therefore lax (`RequireValidWhenParsing(False)`): unknown elements are skipped, known ones kept
  wherever they are. (Generating stays validated: PyXB then writes the elements in the schema's
  order, whatever order they were set in.)
- PyXB logs a warning for every element it skips; they are silenced below ERROR.

Answers begin with a UTF-8 byte-order mark (the SDK strips the first three characters blindly,
whatever they are); it is removed only when present. An answer that cannot be parsed is not
an answer: on a call that moves money it is "unknown" (GatewayResponseLost), like a timeout.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pyxb
import requests
from authorizenet import apicontractsv1 as contracts

from apps.gateways.base import GatewayError, GatewayResponseLost, GatewayRetryableError
from apps.gateways.transport import connection_failure

pyxb.RequireValidWhenParsing(False)
logging.getLogger("pyxb").setLevel(logging.ERROR)

logger = logging.getLogger(__name__)

PROVIDER = "Authorize.Net"
# What toxml() writes for the schema's namespace; Authorize.Net wants it as the default namespace.
_NAMESPACE_PREFIXES = (b"ns1:", b":ns1")
_HEADERS = {"Content-Type": "application/xml; charset=utf-8"}
_BOM = b"\xef\xbb\xbf"

__all__ = ["PROVIDER", "AnetClient", "Unparsable", "contracts", "from_xml", "to_xml"]


class Unparsable(Exception):
    """The body is not an Authorize.Net API document."""


def to_xml(request: Any, element: str) -> bytes:
    """The request object as the document Authorize.Net reads (`element`: its root, e.g.
    "createTransactionRequest"), the schema's namespace as the default one."""
    document: bytes = request.toxml(encoding="utf-8", element_name=element)
    for prefix in _NAMESPACE_PREFIXES:
        document = document.replace(prefix, b"")
    return document


def from_xml(body: bytes) -> Any:
    """An answer's document as the SDK's object (its root element decides the type)."""
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    try:
        return contracts.CreateFromDocument(body.decode("utf-8"))
    except Exception as exc:  # PyXB and the XML parser raise many types; all mean "not a document"
        raise Unparsable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc


_sessions = threading.local()


def _session() -> requests.Session:
    """One keep-alive session per thread (a Session is not shared between threads)."""
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
    return session


class AnetClient:
    """Sends one API request at a time to `url` with these credentials; never shares them."""

    def __init__(
        self, *, login_id: str, transaction_key: str, url: str, timeout: tuple[float, float]
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._login_id = login_id
        self._transaction_key = transaction_key

    def send(self, request: Any, element: str, *, moves_money: bool) -> Any:
        """Posts the request (its merchantAuthentication filled in) and returns the parsed answer.

        Raises GatewayRetryableError (not sent, a 5xx, a look-up without an answer),
        GatewayResponseLost (a call that moves money went out and no readable answer came back) or
        GatewayError (not configured, or refused as a request: retrying can't help).
        """
        if not (self._login_id and self._transaction_key):
            raise GatewayError(
                "AUTHORIZENET_API_LOGIN_ID and AUTHORIZENET_TRANSACTION_KEY must be set to call Authorize.Net.",
                code="gateway_not_configured",
            )
        auth = contracts.merchantAuthenticationType()
        auth.name, auth.transactionKey = self._login_id, self._transaction_key
        request.merchantAuthentication = auth
        document = to_xml(request, element)
        try:
            answer = _session().post(self.url, data=document, headers=_HEADERS, timeout=self.timeout)
        except requests.RequestException as exc:
            raise connection_failure(exc, provider=PROVIDER, moves_money=moves_money)
        if answer.status_code >= 500 or answer.status_code == 429:
            raise GatewayRetryableError(
                f"{PROVIDER} answered HTTP {answer.status_code}.", code="gateway_unavailable"
            )
        if answer.status_code != 200:
            raise GatewayError(
                f"{PROVIDER} refused the request with HTTP {answer.status_code}; check AUTHORIZENET_API_URL.",
                code="gateway_bad_request",
            )
        try:
            return from_xml(answer.content)
        except Unparsable as exc:
            logger.warning("%s %s: unreadable answer (%s)", PROVIDER, element, exc)
            message = f"{PROVIDER}'s answer to {element} could not be read."
            if moves_money:
                raise GatewayResponseLost(
                    message + " The call may have taken effect.", code="gateway_unreadable"
                )
            raise GatewayRetryableError(message, code="gateway_unreadable")
