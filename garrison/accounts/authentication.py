"""DRF authentication by team API token: ``Authorization: Bearer grs_...``."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from garrison.accounts.models import ApiToken
from garrison.accounts.principals import TokenPrincipal
from garrison.accounts.tokens import hash_token_secret
from garrison.core.compiled import CompiledQuery

# Every API call with a token runs this read: compiled once per process (garrison.core.compiled).
_TOKEN_BY_HASH = CompiledQuery(
    lambda key_hash: ApiToken.objects.select_related("team").filter(key_hash=key_hash)[:1], key_hash=str
)

# Recording every use would turn each read into a write; a minute's precision is enough.
LAST_USED_PRECISION = timedelta(seconds=60)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """Authenticate a team API token sent as a Bearer (or ``Token``) credential."""

    keywords = ("bearer", "token")

    def authenticate(self, request: Request) -> tuple[TokenPrincipal, ApiToken] | None:
        """Return the token's principal, or None when no token was sent."""
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode("latin-1").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: send 'Authorization: Bearer <token>' with no spaces in the token."
            )
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The token contains characters that are not ASCII.") from exc
        token = _TOKEN_BY_HASH.first(key_hash=hash_token_secret(secret))
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid API token: check the value, or create a new token.")
        if token.is_revoked:
            raise exceptions.AuthenticationFailed(
                f"This API token was revoked on {token.revoked_at:%Y-%m-%d}; ask a team admin for a new one."
            )
        if token.is_expired:
            raise exceptions.AuthenticationFailed(
                f"This API token expired on {token.expires_at:%Y-%m-%d}; ask a team admin for a new one."
            )
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return TokenPrincipal(token), token

    def authenticate_header(self, request: Request) -> str:
        """Ask for a Bearer token on 401 responses."""
        return 'Bearer realm="garrison"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describe team API tokens in the OpenAPI schema (Swagger UI's Authorize button)."""

    target_class = "garrison.accounts.authentication.ApiTokenAuthentication"
    name = "teamToken"

    def get_security_definition(self, auto_schema: object) -> dict:
        """A Bearer token created on the team page or through the tokens API."""
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")  # noqa: S106 - the scheme name
