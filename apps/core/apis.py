import hmac

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import metrics
from apps.core.errors import AuthenticationFailed
from apps.core.health import run_health_checks, run_readiness_checks
from apps.core.schema import error_responses


class HealthApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="health",
        responses={
            (200, "application/json"): inline_serializer(
                "Health", {"status": serializers.CharField(), "checks": serializers.DictField()}
            ),
            (503, "application/json"): inline_serializer(
                "HealthDown",
                {
                    "status": serializers.ChoiceField(choices=["degraded", "unavailable"]),
                    "checks": serializers.DictField(),
                    "failing": serializers.ListField(child=serializers.CharField()),
                },
            ),
        },
    )
    def get(self, request):
        return _health_response(*run_health_checks())


def _health_response(healthy: bool, checks: dict) -> Response:
    failing = [name for name, result in checks.items() if result["status"] != "ok"]
    # Still 503 (API.md), but "degraded" tells an operator money still moves: only the database
    # is indispensable; without Redis or the broker, requests fall back to PostgreSQL and the outbox.
    if healthy:
        status = "ok"
    elif "database" in failing:
        status = "unavailable"
    else:
        status = "degraded"
    body = {"status": status, "checks": checks}
    if failing:
        body["failing"] = failing
    return Response(body, status=200 if healthy else 503)


class HealthLiveApi(APIView):
    """Liveness: the process answers. Checks nothing external (restarting it would not help)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="health_live",
        responses={
            (200, "application/json"): inline_serializer("HealthLive", {"status": serializers.CharField()})
        },
    )
    def get(self, request):
        return Response({"status": "ok"})


class HealthReadyApi(APIView):
    """Readiness: database (and replica), cache and migrations; 503 takes the process out of rotation."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="health_ready",
        responses={
            (200, "application/json"): inline_serializer(
                "HealthReady", {"status": serializers.CharField(), "checks": serializers.DictField()}
            ),
            (503, "application/json"): inline_serializer(
                "HealthNotReady",
                {
                    "status": serializers.CharField(),
                    "checks": serializers.DictField(),
                    "failing": serializers.ListField(child=serializers.CharField()),
                },
            ),
        },
    )
    def get(self, request):
        return _health_response(*run_readiness_checks())


class MetricsTokenRequired(BasePermission):
    """`Authorization: Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set (production requires it).

    The token is compared in constant time; without METRICS_TOKEN (local runs, tests) anyone reads.
    """

    def has_permission(self, request, view) -> bool:
        expected = settings.METRICS_TOKEN
        if not expected:
            return True
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected.encode()):
            return True
        raise AuthenticationFailed(
            "The metrics need `Authorization: Bearer <METRICS_TOKEN>`.", code="metrics_token_invalid"
        )


class MetricsApi(APIView):
    """Prometheus text format (django-prometheus and Paydesk's own metrics), for the scraper.

    With METRICS_TOKEN set, only a scraper presenting it as a bearer token reads them.
    """

    authentication_classes: list = []
    permission_classes = [MetricsTokenRequired]

    @extend_schema(
        operation_id="metrics",
        responses={(200, "text/plain"): OpenApiTypes.STR, **error_responses(401)},
    )
    def get(self, request):
        body, content_type = metrics.exposition()
        return HttpResponse(body, content_type=content_type)


class PingApi(APIView):
    """An authenticated request that does nothing: the framework's own cost per request.

    Authentication, middleware, routing and rendering, and no work: `bench/run.py` measures every
    other endpoint against it.
    """

    @extend_schema(
        operation_id="ping",
        responses={
            200: inline_serializer("Ping", {"ok": serializers.BooleanField()}),
            **error_responses(401),
        },
    )
    def get(self, request):
        return Response({"ok": True})
