"""The principal behind an API token, standing where ``request.user`` stands."""

from __future__ import annotations

from dataclasses import dataclass

from garrison.accounts.models import ApiToken


@dataclass(frozen=True, eq=False)
class TokenPrincipal:
    """An authenticated API token: one team, one token role, no person."""

    token: ApiToken

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    @property
    def team_id(self) -> int:
        """The token's team."""
        return self.token.team_id

    @property
    def role(self) -> str:
        """The token's role."""
        return self.token.role

    @property
    def username(self) -> str:
        """A label for logs and audit rows."""
        return f"token:{self.token.prefix}"

    def get_username(self) -> str:
        """Same as ``username``, like Django users."""
        return self.username

    def __str__(self) -> str:
        return f"API token '{self.token.name}' ({self.token.prefix}…)"
