from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core.apis import HealthApi, HealthLiveApi, HealthReadyApi, MetricsApi, PingApi

urlpatterns = [
    path("health", HealthApi.as_view(), name="health"),
    path("health/live", HealthLiveApi.as_view(), name="health-live"),
    path("health/ready", HealthReadyApi.as_view(), name="health-ready"),
    path("metrics", MetricsApi.as_view(), name="metrics"),
    path("ping", PingApi.as_view(), name="ping"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]
