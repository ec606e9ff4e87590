"""HTTP for notifications: a user's own email history, newest first."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import authenticated_user
from apps.core.pagination import PAGE_PARAMETERS, page_body, page_params, page_schema, paginate
from apps.core.schema import blank_or, error_responses
from apps.notifications.models import Notification
from apps.notifications.selectors import notification_get, notification_list


class NotificationOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    event = serializers.CharField(source="event_id", help_text="The `evt_…` this email is about.")
    template = serializers.ChoiceField(choices=Notification.Template.choices)
    to = serializers.CharField(help_text="The address it was sent to.")
    subject = serializers.CharField()
    status = serializers.ChoiceField(choices=Notification.Status.choices)
    attempts = serializers.IntegerField(help_text="Sends tried so far.")
    last_error = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "Notification"

    def get_object(self, notification: Notification) -> str:
        return "notification"

    def get_last_error(self, notification: Notification) -> str | None:
        return notification.last_error or None


class NotificationsApi(APIView):
    """GET /notifications: the emails Paydesk sent (or is sending) to the caller."""

    @extend_schema(
        operation_id="notifications_list",
        parameters=[
            OpenApiParameter(
                "status", blank_or({"type": "string", "enum": Notification.Status.values}), required=False
            ),
            OpenApiParameter(
                "template", blank_or({"type": "string", "enum": Notification.Template.values}), required=False
            ),
            *PAGE_PARAMETERS,
        ],
        responses={
            200: page_schema("NotificationList", NotificationOutputSerializer),
            **error_responses(400, 401),
        },
    )
    def get(self, request: Request) -> Response:
        params = page_params(request.query_params)
        queryset = notification_list(
            user=authenticated_user(request),
            status=request.query_params.get("status"),
            template=request.query_params.get("template"),
        )
        return Response(page_body(paginate(queryset, params), NotificationOutputSerializer))


class NotificationDetailApi(APIView):
    @extend_schema(
        operation_id="notifications_retrieve",
        responses={200: NotificationOutputSerializer, **error_responses(401, 404)},
    )
    def get(self, request: Request, notification_id: str) -> Response:
        notification = notification_get(user=authenticated_user(request), notification_id=notification_id)
        return Response(NotificationOutputSerializer(notification).data)
