"""Passwords (argon2), access tokens (JWT signed with a key ring) and refresh tokens (opaque, stored hashed)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
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
# HS256 keys shorter than the hash output are guessable offline from one captured token (RFC 7518 3.2).
MIN_SECRET_BYTES = 32
# Strings published in this repository's history, its docs or common templates: never a real secret.
KNOWN_PLACEHOLDERS = frozenset({
    "change-me-to-a-long-random-secret", "change-me", "changeme", "secret", "jwt-secret", "your-secret",
    "your-256-bit-secret", "supersecret", "please-change-me", "replace-me",
})


def weak_secret_reason(secret: str) -> str | None:
    """Why a signing secret must not be used, or None when it is acceptable."""
    lowered = secret.strip().lower()
    if lowered in KNOWN_PLACEHOLDERS or "change-me" in lowered or "changeme" in lowered:
        return "is a published placeholder"
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    return None


def key_id(secret: str) -> str:
    """A stable, public name for a secret (a hash prefix: naming the key reveals nothing usable about it)."""
    return hashlib.sha256(b"branch-audit signing key\x00" + secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    kid: str
    secret: str

    @classmethod
    def of(cls, secret: str) -> SigningKey:
        return cls(key_id(secret), secret)


class SigningKeys:
    """The key new tokens are signed with, and the one before it. Tokens name their key (`kid`); the previous
    key is honoured only until one access-token lifetime after the current key came into use, so a rotation
    logs nobody out and a retired key (perhaps the leaked one) stops working soon after."""

    def __init__(self, current: SigningKey, previous: SigningKey | None = None) -> None:
        self.current = current
        self.previous = previous if previous is not None and previous.kid != current.kid else None
        # Set once the first use of the current key is known (server.auth_state); until then, not honoured.
        self.previous_until: datetime | None = None
        self.verified = VerifiedTokens()

    def key_for(self, kid: object, now: datetime) -> SigningKey | None:
        if kid == self.current.kid:
            return self.current
        if self.previous is not None and kid == self.previous.kid and self.previous_until is not None \
                and now < self.previous_until:
            return self.previous
        return None


def issue_access_token(keys: SigningKeys, *, user_id: str, role: str, session_id: str, now: datetime,
                       ttl_s: int) -> str:
    claims = {
        "sub": user_id,
        "role": role,
        "sid": session_id,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
        "typ": "access",
    }
    return jwt.encode(claims, keys.current.secret, algorithm=JWT_ALGORITHM, headers={"kid": keys.current.kid})


# Tokens in use at once on one instance: every signed-in phone and browser holds one (two around a refresh).
MAX_VERIFIED_TOKENS = 4096


class VerifiedTokens:
    """Access tokens this process has already verified, with their claims. PyJWT takes about 60 us to parse
    and check one HS256 token, a third of a cached checklist GET; a phone sends the same token for its whole
    lifetime. Only tokens whose signature verified enter, so a forged token never skips the check; a hit still
    answers to the clock and the key ring (`decode_access_token`). Bounded: the oldest entry leaves first."""

    def __init__(self, capacity: int = MAX_VERIFIED_TOKENS) -> None:
        self.capacity = capacity
        self._entries: dict[str, tuple[str, int, dict[str, Any]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> tuple[str, int, dict[str, Any]] | None:
        """(kid, exp, claims) of a token verified before, or None."""
        return self._entries.get(token)

    def put(self, token: str, kid: str, claims: dict[str, Any]) -> None:
        if self.capacity <= 0:
            return
        if len(self._entries) >= self.capacity:
            self._entries.pop(next(iter(self._entries)))
        self._entries[token] = (kid, int(claims["exp"]), claims)

    def forget(self, token: str) -> None:
        self._entries.pop(token, None)


def decode_access_token(keys: SigningKeys, token: str, now: datetime) -> dict[str, Any] | None:
    """The claims of a valid, unexpired access token signed with a key still honoured, else None."""
    known = keys.verified.get(token)
    if known is not None:
        known_kid, expires, known_claims = known
        # Expiry and the key ring are checked on every use: the previous key stops being honoured at its time
        # even for tokens verified while it still was.
        if expires <= int(now.timestamp()) or keys.key_for(known_kid, now) is None:
            keys.verified.forget(token)
            return None
        return dict(known_claims)  # a copy: the caller may not change what later requests read
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None
    key = keys.key_for(kid, now)
    if key is None:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.secret,
            algorithms=[JWT_ALGORITHM],
            options={"verify_exp": False, "verify_iat": False, "require": ["sub", "exp", "sid"]},
        )
    except jwt.PyJWTError:
        return None
    # Expiry is checked against the injected clock, so tests can expire tokens without sleeping.
    if claims.get("typ") != "access" or int(claims["exp"]) <= int(now.timestamp()):
        return None
    keys.verified.put(token, key.kid, claims)
    return dict(claims)


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def new_ticket() -> str:
    """A single-use download ticket: unguessable, short enough for a URL."""
    return secrets.token_urlsafe(24)


def token_digest(token: str) -> str:
    """Refresh tokens and tickets are stored as digests: a database leak does not hand out sessions."""
    return hashlib.sha256(token.encode()).hexdigest()
