from rest_framework.permissions import BasePermission

from apps.accounts.errors import ApiKeyNotAllowed
from apps.accounts.models import ApiKey


class IsLoggedInUser(BasePermission):
    """A person's session, not an API key.

    Minting and revoking keys needs a logged-in user: a leaked key must not be able to mint
    fresh keys that outlive its own revocation.
    """

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            raise ApiKeyNotAllowed()
        return bool(request.user and request.user.is_authenticated)
