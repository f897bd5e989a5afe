"""Logging in, refreshing, logging out and passwords: the commands behind /auth, /me/password and an
admin's password reset. Each writes its trail entry in the transaction that makes the change."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from schemas.auth import SessionTokens, TemporaryPassword
from schemas.org import UserPublic
from server.auth_state import auth_state
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Doc
from server.domain import login_throttle as throttle
from server.domain.password_rules import password_problems
from server.errors import NotFound, TooManyRequests, Unauthorized, ValidationFailed, field_error
from server.security import issue_access_token, new_refresh_token, token_digest
from server.sessions import end_session, end_sessions_of_user
from server.storage import auth as auth_store
from server.storage import users

log = logging.getLogger("branch_audit.auth")

# A phone that lost the answer to its refresh on a bad network retries with the same token; within this
# many seconds it gets the same successor instead of revoking its own session as a replay.
REFRESH_GRACE = timedelta(seconds=10)


@dataclass(frozen=True)
class LogIn:
    username: str
    password: str
    client_address: str
    request_id: str | None = None


@dataclass(frozen=True)
class ChangePassword:
    current_password: str
    new_password: str


def throttle_policy(services: Services) -> throttle.ThrottlePolicy:
    s = services.settings
    return throttle.ThrottlePolicy(
        free_failures=s.login_free_failures, lock_after=s.login_max_failures,
        window=timedelta(seconds=s.login_window_s), max_delay=timedelta(seconds=s.login_max_delay_s),
        address_max_usernames=s.login_address_max_usernames,
    )


def _account_key(username: str) -> str:
    return "account:" + username.strip().lower()


def _address_lock_key(address: str) -> str:
    return "address-lock:" + address


# --- logging in ------------------------------------------------------------------------------------


async def log_in(services: Services, command: LogIn) -> SessionTokens:
    """Tokens for a correct username and password, unless throttling asks the caller to wait."""
    now = services.clock.now()
    policy = throttle_policy(services)
    account_key, lock_key = _account_key(command.username), _address_lock_key(command.client_address)
    state = await auth_store.throttle_docs(services.db, account_key, lock_key)
    account = throttle.AccountFailures.from_doc(state.get(account_key))
    wait = (throttle.address_wait((state.get(lock_key) or {}).get("locked_until"), now)
            or throttle.account_wait(policy, account, now))
    user = await users.by_username(services.db, command.username)
    actor = ActorInfo(user_id=user["_id"] if user else None, role=user["role"] if user else "anonymous",
                      request_id=command.request_id, client_address=command.client_address)
    if wait is not None:
        await _refuse(services, actor, command, user, wait)
    # Verify even for an unknown username so both failures take the same time.
    valid = await services.passwords.verify(user["password_hash"] if user else None, command.password)
    if not valid or user is None or not user.get("active", True):
        await _fail(services, actor, command, user, account, policy)
        raise Unauthorized("Wrong username or password")
    session_id = str(uuid.uuid4())
    refresh = new_refresh_token()

    async def work(uow: UnitOfWork) -> None:
        await auth_store.clear_account_failures(uow.db, account_key, uow.session)
        await auth_store.insert_session(uow.db, session_id, user["_id"], uow.now,
                                        services.settings.refresh_token_ttl_s, command.client_address, uow.session)
        await auth_store.insert_refresh_token(uow.db, token_digest(refresh), session_id, user["_id"], uow.now,
                                              services.settings.refresh_token_ttl_s, uow.session)
        uow.record("session.open", "user", user["_id"], {"username": user["username"]}, session_id=session_id)

    await services.transact(actor, work)
    return _tokens(services, user, session_id, refresh)


def _subject(user: Doc | None, command: LogIn) -> tuple[str, str]:
    """Trail subject of an attempt: the user, or the username tried when there is no such user."""
    return ("user", user["_id"]) if user else ("login", command.username.strip().lower()[:100])


async def _refuse(services: Services, actor: ActorInfo, command: LogIn, user: Doc | None,
                  wait: throttle.Wait) -> None:
    services.metrics.counters[f"login_refusals_{wait.reason}_total"] += 1
    entity_type, entity_id = _subject(user, command)

    async def work(uow: UnitOfWork) -> None:
        uow.record("login.refuse", entity_type, entity_id,
                   {"reason": wait.reason, "retry_after_s": wait.seconds, "username": command.username[:100]})

    await services.transact(actor, work)
    log.warning("login refused", extra={"reason": wait.reason, "client": command.client_address,
                                        "retry_after_s": wait.seconds})
    detail = ("Too many failed logins from this address; try again later" if wait.reason == "address_locked"
              else "Too many failed logins for this account; try again later")
    raise TooManyRequests(detail, headers={"Retry-After": str(wait.seconds)}, extra={"reason": wait.reason})


async def _fail(services: Services, actor: ActorInfo, command: LogIn, user: Doc | None,
                account: throttle.AccountFailures, policy: throttle.ThrottlePolicy) -> None:
    services.metrics.counters["login_failures_total"] += 1
    entity_type, entity_id = _subject(user, command)
    now = services.clock.now()
    after = throttle.after_failure(policy, account, now)
    username_key = hashlib.sha256(command.username.strip().lower().encode()).hexdigest()[:32]

    async def work(uow: UnitOfWork) -> None:
        await auth_store.save_account_failures(uow.db, _account_key(command.username), after.as_doc(),
                                               now + policy.window, uow.session)
        usernames = await auth_store.note_address_failure(uow.db, command.client_address, username_key, now,
                                                          now + policy.window, uow.session)
        summary: dict[str, Any] = {"username": command.username[:100], "failures": after.count}
        if after.locked_until is not None:
            summary["account_locked_until"] = after.locked_until
        if throttle.address_locks(policy, usernames):
            await auth_store.lock_address(uow.db, _address_lock_key(command.client_address), now + policy.window,
                                          uow.session)
            summary["address_locked"] = True
        uow.record("login.fail", entity_type, entity_id, summary)

    await services.transact(actor, work)


def _tokens(services: Services, user: Doc, session_id: str, refresh: str) -> SessionTokens:
    settings = services.settings
    access = issue_access_token(auth_state(services).keys, user_id=str(user["_id"]), role=str(user["role"]),
                                session_id=session_id, now=services.clock.now(), ttl_s=settings.access_token_ttl_s)
    return SessionTokens(access_token=access, refresh_token=refresh, expires_in=settings.access_token_ttl_s,
                         user=UserPublic.model_validate(users.public_user(user)),
                         password_change_required=bool(user.get("must_change_password")))


# --- refreshing ------------------------------------------------------------------------------------


def _successors(services: Services, presented: str) -> list[str]:
    """The refresh token that follows `presented`: derived, not stored, so a retry can be given it again.
    Derived with the current key and, across a rotation, the previous one."""
    keys = auth_state(services).keys
    secrets_ = [keys.current.secret] + ([keys.previous.secret] if keys.previous else [])
    return [
        base64.urlsafe_b64encode(
            hmac.new(secret.encode(), b"refresh successor\x00" + presented.encode(), hashlib.sha256).digest()
        ).decode().rstrip("=")
        for secret in secrets_
    ]


async def refresh_session(services: Services, presented: str, actor: ActorInfo) -> SessionTokens:
    """Rotate a refresh token. The immediately previous one, presented again within REFRESH_GRACE, gets the
    same successor (a lost response); any other used one is a replay and ends its session."""
    now = services.clock.now()
    digest = token_digest(presented)
    successor = _successors(services, presented)[0]
    if await auth_store.use_refresh_token(services.db, digest, token_digest(successor), now):
        token = await auth_store.refresh_token(services.db, digest)
        if token is None:
            raise Unauthorized("Refresh token is invalid or expired")
        user = await _session_user(services, token)
        await auth_store.insert_refresh_token(services.db, token_digest(successor), token["session_id"],
                                              user["_id"], now, services.settings.refresh_token_ttl_s)
        return _tokens(services, user, token["session_id"], successor)
    token = await auth_store.refresh_token(services.db, digest)
    if token is None or token.get("used_at") is None:
        raise Unauthorized("Refresh token is invalid or expired")
    retried = await _retried_successor(services, presented, token, now)
    if retried is not None:
        user = await _session_user(services, token)
        return _tokens(services, user, token["session_id"], retried)

    async def work(uow: UnitOfWork) -> None:
        # A used token presented again means it leaked: end every token of that login.
        await end_session(uow, token["user_id"], token["session_id"], "refresh token reuse")

    await services.transact(actor, work)
    log.warning("refresh token replayed; its session was ended", extra={"session_id": token["session_id"]})
    raise Unauthorized("Refresh token was already used; the session has been revoked")


async def _retried_successor(services: Services, presented: str, token: Doc, now: Any) -> str | None:
    """The successor to give again, when `token` is the immediately previous one and was used moments ago."""
    used_at = token["used_at"]
    if used_at.tzinfo is None:
        used_at = used_at.replace(tzinfo=now.tzinfo)
    if now - used_at > REFRESH_GRACE or not token.get("successor"):
        return None
    for successor in _successors(services, presented):
        if token_digest(successor) == token["successor"]:
            following = await auth_store.refresh_token(services.db, token["successor"])
            # An older generation (its successor already used in turn) is a replay, not a retry. A successor
            # not stored yet is a concurrent refresh with the same token (two tabs) that is storing it now.
            if following is None or following.get("used_at") is None:
                return successor
    return None


async def _session_user(services: Services, token: Doc) -> Doc:
    session = await auth_store.session_by_id(services.db, token["session_id"])
    if session is None or session.get("revoked_at"):
        raise Unauthorized("Session has been revoked")
    user = await users.by_id(services.db, token["user_id"])
    if user is None or not user.get("active", True):
        raise Unauthorized("User is no longer active")
    return user


# --- logging out and passwords ---------------------------------------------------------------------


async def log_out(services: Services, actor: ActorInfo, session_id: str) -> None:
    async def work(uow: UnitOfWork) -> None:
        if actor.user_id is not None:
            await end_session(uow, actor.user_id, session_id, "logout")

    await services.transact(actor, work)


async def change_password(services: Services, actor: ActorInfo, session_id: str,
                          command: ChangePassword) -> int:
    """A user's own new password; their other sessions end and this one stays. Returns how many ended."""
    user = await users.by_id(services.db, actor.user_id or "")
    if user is None:
        raise Unauthorized("User is no longer active")
    now = services.clock.now()
    policy = throttle_policy(services)
    # The current password is guessable through this endpoint too, so it counts towards the same throttle.
    account_key = _account_key(user["username"])
    state = await auth_store.throttle_docs(services.db, account_key, _address_lock_key(actor.client_address or ""))
    account = throttle.AccountFailures.from_doc(state.get(account_key))
    wait = throttle.account_wait(policy, account, now)
    if wait is not None:
        services.metrics.counters[f"login_refusals_{wait.reason}_total"] += 1
        raise TooManyRequests("Too many wrong passwords for this account; try again later",
                              headers={"Retry-After": str(wait.seconds)}, extra={"reason": wait.reason})
    if not await services.passwords.verify(user.get("password_hash"), command.current_password):
        await _fail(services, actor, LogIn(user["username"], "", actor.client_address or "unknown"), user,
                    account, policy)
        raise ValidationFailed("The current password is wrong",
                               errors=[field_error(["body", "current_password"], "is wrong")])
    problems = password_problems(command.new_password, user["username"])
    if command.new_password == command.current_password:
        problems.append("must differ from the current password")
    if problems:
        raise ValidationFailed("The new password is not acceptable",
                               errors=[field_error(["body", "new_password"], p) for p in problems])
    password_hash = await services.passwords.hash(command.new_password)

    async def work(uow: UnitOfWork) -> int:
        await auth_store.set_password(uow.db, user["_id"], password_hash, uow.now, must_change=False,
                                      session=uow.session)
        await auth_store.clear_account_failures(uow.db, account_key, uow.session)
        ended = await end_sessions_of_user(uow, user["_id"], "password changed", keep_session=session_id)
        uow.record("user.change_password", "user", user["_id"], {"other_sessions_ended": ended})
        return ended

    return await services.transact(actor, work)


async def reset_password(services: Services, actor: ActorInfo, user_id: str) -> TemporaryPassword:
    """An admin's reset: a temporary password, shown once, to be changed at the next login; every session
    of the user ends."""
    user = await users.by_id(services.db, user_id)
    if user is None:
        raise NotFound("User not found")
    temporary = secrets.token_urlsafe(12)
    password_hash = await services.passwords.hash(temporary)

    async def work(uow: UnitOfWork) -> int:
        await auth_store.set_password(uow.db, user_id, password_hash, uow.now, must_change=True,
                                      session=uow.session)
        await auth_store.clear_account_failures(uow.db, _account_key(user["username"]), uow.session)
        ended = await end_sessions_of_user(uow, user_id, "password reset")
        uow.record("user.reset_password", "user", user_id, {"sessions_ended": ended})
        return ended

    ended = await services.transact(actor, work)
    return TemporaryPassword(temporary_password=temporary, sessions_ended=ended)
