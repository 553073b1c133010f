"""Forms for team administration."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from garrison.accounts.roles import Role, TokenRole


class MemberAddForm(forms.Form):
    """Add an existing user to the team."""

    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class MemberRoleForm(forms.Form):
    """Change a member's role."""

    role = forms.ChoiceField(choices=Role.choices)


class TokenCreateForm(forms.Form):
    """Create an API token."""

    name = forms.CharField(max_length=120, help_text="What will use it, e.g. 'release pipeline'.")
    role = forms.ChoiceField(choices=TokenRole.choices, initial=TokenRole.CI)
    expires_at = forms.DateTimeField(
        required=False,
        help_text="Optional, e.g. 2027-06-30 00:00. Leave empty for no expiry.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean_expires_at(self):
        """The expiry must lie in the future."""
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("The expiry time must be in the future.")
        return value
