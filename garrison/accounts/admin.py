"""Admin for teams, memberships and tokens: read-only (writes go through the audited pages)."""

from __future__ import annotations

from django.contrib import admin

from garrison.accounts.models import ApiToken, Membership, Team
from garrison.core.admin import ReadOnlyAdminMixin


class MembershipInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Members inline on a team."""

    model = Membership
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = fields


@admin.register(Team)
class TeamAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Teams."""

    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """API tokens (only their prefix and hash are stored)."""

    list_display = ["name", "team", "role", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["role", "team"]
    exclude = ["key_hash"]
