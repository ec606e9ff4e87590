"""Request plumbing: correlation ids on every request, the error envelope for all of /api/, and
unread request bodies read off before the answer goes out."""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core import correlation
from apps.core.errors import NulCharacterRejected
from apps.core.exception_handler import envelope_for_status

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


class TrustedProxyMiddleware:
    """Puts the real client's address in REMOTE_ADDR when the request came through our own proxy.

    Only when the immediate peer is one of TRUSTED_PROXIES (addresses or networks, e.g. nginx's)
    is X-Forwarded-For read, from the right: the first address that is not a trusted proxy is the
    client. A client-sent header reaching us directly is ignored, so nobody can choose the address
    that throttles count and the audit trail records.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.trusted = [ipaddress.ip_network(net, strict=False) for net in settings.TRUSTED_PROXIES]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.trusted and self._is_trusted(request.META.get("REMOTE_ADDR")):
            hops = [
                hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()
            ]
            for hop in reversed(hops):
                if not self._is_trusted(hop):
                    request.META["REMOTE_ADDR"] = hop
                    break
        return self.get_response(request)

    def _is_trusted(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)


class CorrelationIdMiddleware:
    """Takes `X-Correlation-ID` from the request (or makes one) and returns it on the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        cid = correlation.accept_or_generate(request.headers.get(correlation.HEADER))
        request.correlation_id = cid  # type: ignore[attr-defined]  # read by views and tests
        token = correlation.set_correlation_id(cid)
        meta_token = correlation.set_request_meta(
            ip=request.META.get("REMOTE_ADDR"), user_agent=request.headers.get("User-Agent")
        )
        try:
            response = self.get_response(request)
        finally:
            correlation.reset_request_meta(meta_token)
            correlation.reset_correlation_id(token)
        response[correlation.HEADER] = cid
        return response


class ApiErrorMiddleware:
    """Under /api/, nothing leaves in any shape but the envelope, and no traceback ever does.

    DRF views render their own errors (apps.core.exception_handler); this covers the rest:
    oversized bodies refused before parsing, a NUL character in the path or the query (which no
    PostgreSQL text can hold, so a lookup or filter on it would be a 500), unknown paths, Django's
    own error pages, crashes. On every path, what the application left unread of the body is then
    read off (`_drain_unread_body`), so the answer reaches the client over a real socket.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self._respond(request)
        _drain_unread_body(request)
        return response

    def _respond(self, request: HttpRequest) -> HttpResponse:
        if not _is_api(request):
            return self.get_response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return JsonResponse(envelope_for_status(400, "Content-Length is invalid."), status=400)
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return JsonResponse(envelope_for_status(413), status=413)
        param = _holding_nul(request)
        if param is not None:
            refused = NulCharacterRejected(f"{param}: the NUL character (%00) is not allowed.", param=param)
            return JsonResponse(refused.as_envelope(), status=refused.status_code)
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_json(response):
            return _envelope_response(response.status_code, response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not _is_api(request):
            return None
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse(envelope_for_status(413), status=413)
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return JsonResponse(envelope_for_status(500), status=500)


DRAIN_CHUNK_BYTES = 65_536


def _drain_unread_body(request: HttpRequest) -> None:
    """Reads and discards what is left of the request's body, up to REQUEST_DRAIN_MAX_BYTES.

    A body refused before it is read (413 above all, but any early answer) would otherwise stay
    in the socket: gunicorn closing a socket with unread data makes the kernel send a reset, and
    the client loses the answer it was sent; a kept-alive connection would start its next request
    inside the leftover body. Read off, the connection closes cleanly or serves the next request.
    A body declared larger than the bound is left alone: no amount of reading is worth a worker.
    """
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if not 0 < declared <= settings.REQUEST_DRAIN_MAX_BYTES:
        return
    try:
        while request.read(DRAIN_CHUNK_BYTES):
            pass
    except OSError:  # the client went away (UnreadablePostError): nothing left to save
        pass


def _holding_nul(request: HttpRequest) -> str | None:
    """The path, or the first query parameter, whose decoded text holds U+0000; None if none does."""
    if "\x00" in request.path:
        return "path"
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return name.replace("\x00", "")
    return None


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _envelope_response(status: int, original: HttpResponse) -> JsonResponse:
    response = JsonResponse(envelope_for_status(status), status=status)
    for header in ("Allow", "Retry-After", "WWW-Authenticate"):
        if header in original:
            response[header] = original[header]
    return response
