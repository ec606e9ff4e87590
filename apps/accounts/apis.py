from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import IsLoggedInUser
from apps.accounts.selectors import api_key_get, api_key_list, authenticated_user, request_actor
from apps.accounts.serializers import UserSerializer
from apps.accounts.services import (
    api_key_create,
    api_key_revoke,
    auth_login,
    auth_logout,
    auth_refresh,
    password_reset_confirm,
    password_reset_request,
    user_password_change,
    user_register,
)
from apps.accounts.throttles import LoginIpThrottle, PasswordResetThrottle, RegisterThrottle
from apps.core.fields import TextField
from apps.core.pagination import PAGE_PARAMETERS, page_body, page_params, page_schema, paginate
from apps.core.schema import error_responses
from apps.core.serializers import InputSerializer as BaseInputSerializer

# API keys are managed with a login session only. drf-spectacular types `auth` as scheme names;
# it takes OpenAPI security requirement objects too, which is what this is.
JWT_ONLY: list[Any] = [{"jwtAuth": []}]

# Component names are given explicitly: every view's nested serializers are called InputSerializer
# and OutputSerializer, which drf-spectacular would otherwise merge into one "Input" component.


class _PasswordField(TextField):
    def __init__(self, **kwargs):
        # Whitespace is part of a password; the cap keeps absurd bodies away from the hasher.
        super().__init__(trim_whitespace=False, max_length=1024, write_only=True, **kwargs)


@extend_schema_serializer(component_name="RefreshTokenInput")
class _RefreshInputSerializer(BaseInputSerializer):
    refresh = TextField(max_length=4096)


class RegisterApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [RegisterThrottle]

    @extend_schema_serializer(component_name="RegisterInput")
    class InputSerializer(BaseInputSerializer):
        email = serializers.EmailField(max_length=254)
        password = _PasswordField()
        full_name = TextField(max_length=200, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="auth_register",
        tags=["auth"],
        request=InputSerializer,
        responses={201: UserSerializer, **error_responses(400, 409, 429)},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_register(**data.validated_data)
        return Response(UserSerializer(user).data, status=201)


class LoginApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginIpThrottle]

    @extend_schema_serializer(component_name="LoginInput")
    class InputSerializer(BaseInputSerializer):
        email = serializers.EmailField(max_length=254)
        password = _PasswordField()

    @extend_schema_serializer(component_name="Login")
    class OutputSerializer(serializers.Serializer):
        access = serializers.CharField()
        refresh = serializers.CharField()
        user = UserSerializer()

    @extend_schema(
        operation_id="auth_login",
        tags=["auth"],
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 401, 429)},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        login = auth_login(**data.validated_data)
        return Response(
            self.OutputSerializer(
                {"access": login.tokens.access, "refresh": login.tokens.refresh, "user": login.user}
            ).data
        )


class RefreshApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="TokenPair")
    class OutputSerializer(serializers.Serializer):
        access = serializers.CharField()
        refresh = serializers.CharField()

    @extend_schema(
        operation_id="auth_refresh",
        tags=["auth"],
        description="Rotates the refresh token: the one sent is dead afterwards. Sending a refresh "
        "token that was already rotated away ends the whole session (401 `refresh_token_reused`).",
        request=_RefreshInputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 401)},
    )
    def post(self, request):
        data = _RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tokens = auth_refresh(refresh=data.validated_data["refresh"])
        return Response(self.OutputSerializer({"access": tokens.access, "refresh": tokens.refresh}).data)


class LogoutApi(APIView):
    # The refresh token in the body is the credential: it names the session to end.
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_logout",
        tags=["auth"],
        description="Ends the session of the refresh token: it and all the session's access tokens stop working.",
        request=_RefreshInputSerializer,
        responses={204: None, **error_responses(400, 401)},
    )
    def post(self, request):
        data = _RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        auth_logout(refresh=data.validated_data["refresh"])
        return Response(status=204)


class MeApi(APIView):
    @extend_schema(
        operation_id="auth_me", tags=["auth"], responses={200: UserSerializer, **error_responses(401)}
    )
    def get(self, request):
        return Response(UserSerializer(authenticated_user(request)).data)


class PasswordChangeApi(APIView):
    # A person's login, not an API key: a leaked key must not be able to take the account over.
    permission_classes = [IsLoggedInUser]

    @extend_schema_serializer(component_name="PasswordChangeInput")
    class InputSerializer(BaseInputSerializer):
        current_password = _PasswordField()
        new_password = _PasswordField()

    @extend_schema(
        operation_id="auth_password_change",
        auth=JWT_ONLY,
        tags=["auth"],
        description="Sets a new password. Every session of the user ends, this one included: log "
        "in again. A wrong current password is counted like a failed login (401, then 429).",
        request=InputSerializer,
        responses={204: None, **error_responses(400, 401, 403, 429)},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user_password_change(user=authenticated_user(request), **data.validated_data)
        return Response(status=204)


class PasswordResetApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [PasswordResetThrottle]

    @extend_schema_serializer(component_name="PasswordResetInput")
    class InputSerializer(BaseInputSerializer):
        email = serializers.EmailField(max_length=254)

    @extend_schema(
        operation_id="auth_password_reset",
        tags=["auth"],
        description="Always 202, whether or not the address has an account. A known address gets an "
        "email with a link `…?token=<token>`, valid for one hour and for one use.",
        request=InputSerializer,
        responses={202: None, **error_responses(400, 429)},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        password_reset_request(email=data.validated_data["email"])
        return Response(status=202)


class PasswordResetConfirmApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="PasswordResetConfirmInput")
    class InputSerializer(BaseInputSerializer):
        token = TextField(max_length=256)
        new_password = _PasswordField()

    @extend_schema(
        operation_id="auth_password_reset_confirm",
        tags=["auth"],
        description="Sets the new password with the emailed token; every session of the user ends. "
        "400 `token_invalid` for an unknown, used or expired token.",
        request=InputSerializer,
        responses={204: None, **error_responses(400)},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        password_reset_confirm(**data.validated_data)
        return Response(status=204)


@extend_schema_serializer(component_name="ApiKey")
class _ApiKeySerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The first characters of the key, to tell keys apart.")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class ApiKeysApi(APIView):
    permission_classes = [IsLoggedInUser]

    @extend_schema_serializer(component_name="ApiKeyCreateInput")
    class CreateInputSerializer(BaseInputSerializer):
        name = TextField(max_length=100)

    @extend_schema_serializer(component_name="ApiKeyCreated")
    class CreateOutputSerializer(_ApiKeySerializer):
        key = serializers.CharField(help_text="The secret. Shown in this response only; store it now.")

    @extend_schema(
        operation_id="api_keys_list",
        auth=JWT_ONLY,
        tags=["api-keys"],
        parameters=PAGE_PARAMETERS,
        responses={200: page_schema("ApiKeyList", _ApiKeySerializer), **error_responses(400, 401, 403)},
    )
    def get(self, request):
        page = paginate(api_key_list(user=authenticated_user(request)), page_params(request.query_params))
        return Response(page_body(page, _ApiKeySerializer))

    @extend_schema(
        operation_id="api_keys_create",
        auth=JWT_ONLY,
        tags=["api-keys"],
        request=CreateInputSerializer,
        responses={201: CreateOutputSerializer, **error_responses(400, 401, 403)},
    )
    def post(self, request):
        data = self.CreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        api_key, secret = api_key_create(
            user=authenticated_user(request), name=data.validated_data["name"], actor=request_actor(request)
        )
        return Response({**_ApiKeySerializer(api_key).data, "key": secret}, status=201)


class ApiKeyApi(APIView):
    permission_classes = [IsLoggedInUser]

    @extend_schema(
        operation_id="api_keys_revoke",
        auth=JWT_ONLY,
        tags=["api-keys"],
        description="Revokes the key: it stops working at once. Revoking a revoked key is a no-op.",
        responses={204: None, **error_responses(401, 403, 404)},
    )
    def delete(self, request, api_key_id: str):
        api_key = api_key_get(user=authenticated_user(request), api_key_id=api_key_id)
        api_key_revoke(api_key=api_key, actor=request_actor(request))
        return Response(status=204)
