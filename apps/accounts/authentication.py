# Placeholder: replaced by the accounts work (session-checked JWT, API keys).
from rest_framework.authentication import BaseAuthentication
from rest_framework_simplejwt.authentication import JWTAuthentication


class SessionJWTAuthentication(JWTAuthentication):
    pass


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        return None
