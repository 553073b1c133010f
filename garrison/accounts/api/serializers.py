"""API serializers for teams, members and tokens."""

from __future__ import annotations

from rest_framework import serializers

from garrison.accounts.models import ApiToken, Membership, Team
from garrison.accounts.roles import Role, TokenRole
from garrison.core.api.serializers import InputSerializer


class TeamOutput(serializers.ModelSerializer):
    """A team."""

    class Meta:
        model = Team
        fields = ["id", "name", "slug", "description", "created_at"]
        read_only_fields = fields


class MembershipOutput(serializers.ModelSerializer):
    """A member and their role."""

    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at"]
        read_only_fields = fields


class MembershipCreateInput(InputSerializer):
    """Add a member."""

    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipUpdateInput(InputSerializer):
    """Change a member's role."""

    role = serializers.ChoiceField(choices=Role.choices)


class ApiTokenOutput(serializers.ModelSerializer):
    """An API token, without its secret."""

    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "role",
            "prefix",
            "created_by",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "is_active",
        ]
        read_only_fields = fields


class ApiTokenCreatedOutput(ApiTokenOutput):
    """A new API token with its secret, returned once."""

    secret = serializers.CharField(read_only=True, help_text="Shown only now; store it in your CI secrets.")

    class Meta(ApiTokenOutput.Meta):
        fields = [*ApiTokenOutput.Meta.fields, "secret"]
        read_only_fields = fields


class ApiTokenCreateInput(InputSerializer):
    """Create an API token."""

    name = serializers.CharField(max_length=120)
    role = serializers.ChoiceField(choices=TokenRole.choices, default=TokenRole.CI)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class TeamRoleOutput(serializers.Serializer):
    """The caller's role in one team."""

    slug = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField()
    capabilities = serializers.ListField(child=serializers.CharField())


class MeOutput(serializers.Serializer):
    """Who the caller is."""

    kind = serializers.ChoiceField(choices=["user", "token"])
    username = serializers.CharField()
    teams = TeamRoleOutput(many=True)
