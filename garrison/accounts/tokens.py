"""Making and recognising API token secrets."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings

PREFIX_LENGTH = 12


def new_token_secret() -> str:
    """A new random token secret (shown to its creator once, never stored)."""
    return settings.GARRISON_API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token_secret(secret: str) -> str:
    """The SHA-256 hex digest stored for a token secret (secrets are high-entropy, so no salt)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def token_prefix(secret: str) -> str:
    """The visible beginning of a secret, to recognise it in lists."""
    return secret[:PREFIX_LENGTH]
