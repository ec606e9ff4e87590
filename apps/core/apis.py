from django_prometheus.exports import ExportToDjangoView
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.health import run_health_checks


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
                "HealthDown", {"status": serializers.CharField(), "checks": serializers.DictField()}
            ),
        },
    )
    def get(self, request):
        healthy, checks = run_health_checks()
        failing = [name for name, result in checks.items() if result["status"] != "ok"]
        body = {"status": "ok" if healthy else "unavailable", "checks": checks}
        if failing:
            body["failing"] = failing
        return Response(body, status=200 if healthy else 503)


class MetricsApi(APIView):
    """Prometheus text format (django-prometheus and Paydesk's own metrics), for the scraper."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(operation_id="metrics", responses={(200, "text/plain"): OpenApiTypes.STR})
    def get(self, request):
        return ExportToDjangoView(request._request)
