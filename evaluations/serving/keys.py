"""Making and recognising consumer-key secrets (the same scheme as team API tokens, another prefix)."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "gsk_"
PREFIX_LENGTH = 12


def new_key_secret() -> str:
    """A new random key secret (shown to its creator once, never stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key_secret(secret: str) -> str:
    """The SHA-256 hex digest stored for a secret (secrets are high-entropy, so no salt)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def key_prefix(secret: str) -> str:
    """The visible beginning of a secret, to recognise it in lists."""
    return secret[:PREFIX_LENGTH]
