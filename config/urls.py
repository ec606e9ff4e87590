from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

api_v1 = [
    path("", include("apps.core.urls")),
    path("", include("apps.accounts.urls")),
    path("", include("apps.wallets.urls")),
    path("", include("apps.payments.urls")),
    path("", include("apps.notifications.urls")),
    path("", include("apps.subscriptions.urls")),
    path("", include("apps.payouts.urls")),
    path("", include("apps.events.urls")),
    path("", include("apps.webhooks.urls")),
]

urlpatterns = [
    # A landing page (the admin's "View site" link comes here): where the API docs and admin are.
    path("", TemplateView.as_view(template_name="landing.html"), name="home"),
    path("api/v1/", include(api_v1)),
    # Staff pages of the back office (the dashboard), ahead of the admin's catch-all URL.
    path("admin/", include("apps.backoffice.urls")),
    path("admin/", admin.site.urls),
]
