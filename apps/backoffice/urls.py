"""Mounted under /admin/ (config/urls.py), ahead of the admin's own URLs, behind its staff login."""

from django.contrib import admin
from django.urls import path

from apps.backoffice.views import dashboard

app_name = "backoffice"

urlpatterns = [
    path("dashboard/", admin.site.admin_view(dashboard), name="dashboard"),
]
