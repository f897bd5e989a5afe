"""Passwords (argon2), access tokens (JWT) and refresh tokens (opaque, stored hashed)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """argon2id hashing with the configured cost; CPU-bound work runs off the event loop."""

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        # Verified when the username is unknown, so a wrong username costs the same as a wrong password.
        self._dummy_hash = self._hasher.hash("dummy-password-for-constant-time")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                matched = self._hasher.verify(stored_hash or self._dummy_hash, password)
            except (VerificationError, InvalidHashError):
                return False
            return matched and stored_hash is not None

        return await asyncio.to_thread(check)

JWT_ALGORITHM = "HS256"


def issue_access_token(secret: str, *, user_id: str, role: str, session_id: str, now: datetime, ttl_s: int) -> str:
    claims = {
        "sub": user_id,
        "role": role,
        "sid": session_id,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def decode_access_token(secret: str, token: str, now: datetime) -> dict[str, Any] | None:
    """The claims of a valid, unexpired access token, else None."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            options={"verify_exp": False, "require": ["sub", "exp", "sid"]},
        )
    except jwt.PyJWTError:
        return None
    # Expiry is checked against the injected clock, so tests can expire tokens without sleeping.
    if claims.get("typ") != "access" or int(claims["exp"]) <= int(now.timestamp()):
        return None
    return claims


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Refresh tokens are stored as digests: a database leak does not hand out sessions."""
    return hashlib.sha256(token.encode()).hexdigest()
