from django.urls import path

from apps.notifications import apis

urlpatterns = [
    path("notifications", apis.NotificationsApi.as_view(), name="notifications"),
    path("notifications/<str:notification_id>", apis.NotificationDetailApi.as_view(), name="notification"),
]
