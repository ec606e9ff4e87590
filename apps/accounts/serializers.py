from rest_framework import serializers

from apps.accounts.models import Roles, User


class UserSerializer(serializers.ModelSerializer):
    """API.md's user: `{id, email, full_name, roles}`."""

    roles = serializers.ListField(child=serializers.ChoiceField(choices=Roles.ALL), read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "roles"]
        read_only_fields = fields
