"""Standard Webhooks signatures: HMAC-SHA256 over "{id}.{timestamp}.{body}", keyed with the secret's
base64-decoded bytes after the `whsec_` prefix, sent as "v1,<base64>".

After a secret is rotated, the previous one stays valid for ROTATION_OVERLAP: until then every delivery
carries two space-separated signatures, "v1,<new> v1,<old>", as Standard Webhooks allows, so a receiver
verifying with either secret accepts it while it switches over."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.backbone import SECRET_PREFIX

SECRET_BYTES = 32
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
# How long a rotated-out secret still signs deliveries: a day lets a receiver deploy the new one unhurried.
ROTATION_OVERLAP = timedelta(hours=24)


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key a `whsec_` secret stands for; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"secret must start with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("secret must be base64 after the whsec_ prefix") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"secret must encode {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header value."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secret: str | Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The delivery headers, signed with each of the secrets given (newest first)."""
    keys = [secret] if isinstance(secret, str) else list(secret)
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(key, message_id, timestamp, body) for key in keys),
    }


def signing_secrets(subscription: Mapping[str, Any], now: datetime) -> list[str]:
    """The subscription's secret, and its previous one while the rotation overlap lasts."""
    found = [str(subscription["secret"])]
    until = subscription.get("previous_secret_until")
    if subscription.get("previous_secret") and until is not None:
        until = until if until.tzinfo else until.replace(tzinfo=UTC)
        if now < until:
            found.append(str(subscription["previous_secret"]))
    return found
