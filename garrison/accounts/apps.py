"""Teams, memberships, roles and API tokens."""

from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Garrison's accounts app."""

    name = "garrison.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
