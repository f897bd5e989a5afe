"""Logins: sessions and their refresh tokens, failure counters for throttling, the revocation epoch that
tells every instance to forget what it cached, the first use of each signing key, and download tickets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from server.db import Database, Doc

EPOCH_ID = "revocations"

INDEXES: dict[str, list[IndexModel]] = {
    "sessions": [IndexModel([("user_id", 1), ("revoked_at", 1)]), IndexModel("expires_at", expireAfterSeconds=0)],
    "refresh_tokens": [IndexModel("session_id"), IndexModel("expires_at", expireAfterSeconds=0)],
    "login_failures": [IndexModel("address"), IndexModel("expires_at", expireAfterSeconds=0)],
    "auth_listeners": [IndexModel("expires_at")],
    "download_tickets": [IndexModel("expires_at", expireAfterSeconds=0)],
}


# --- sessions and refresh tokens -----------------------------------------------------------------


async def insert_session(db: Database, session_id: str, user_id: str, now: datetime, ttl_s: int,
                         client_address: str | None, session: AsyncClientSession) -> None:
    await db.sessions.insert_one(
        {"_id": session_id, "user_id": user_id, "created_at": now, "expires_at": now + timedelta(seconds=ttl_s),
         "revoked_at": None, "client_address": client_address},
        session=session,
    )


async def insert_refresh_token(db: Database, digest: str, session_id: str, user_id: str, now: datetime,
                               ttl_s: int, session: AsyncClientSession | None = None) -> None:
    await db.refresh_tokens.insert_one(
        {"_id": digest, "session_id": session_id, "user_id": user_id, "issued_at": now,
         "expires_at": now + timedelta(seconds=ttl_s), "used_at": None, "successor": None},
        session=session,
    )


async def use_refresh_token(db: Database, digest: str, successor_digest: str, now: datetime) -> bool:
    """Mark a refresh token used and name its successor; True for exactly one caller."""
    # update_one, not find_one_and_update: on SecantusDB the latter scans the collection even on _id.
    result = await db.refresh_tokens.update_one(
        {"_id": digest, "used_at": None, "expires_at": {"$gt": now}},
        {"$set": {"used_at": now, "successor": successor_digest}},
    )
    return result.modified_count == 1


async def refresh_token(db: Database, digest: str) -> Doc | None:
    return await db.refresh_tokens.find_one({"_id": digest})


async def session_by_id(db: Database, session_id: str) -> Doc | None:
    return await db.sessions.find_one({"_id": session_id})


async def open_sessions_of(db: Database, user_id: str, session: AsyncClientSession | None = None) -> list[Doc]:
    """A user's open logins: since when, until when, from where (not their refresh tokens)."""
    fields = {"created_at": 1, "expires_at": 1, "client_address": 1}
    return await db.sessions.find({"user_id": user_id, "revoked_at": None}, fields, session=session).to_list()


async def revoke_sessions(db: Database, session_ids: list[str], user_id: str, now: datetime, reason: str,
                          access_ttl_s: int, session: AsyncClientSession) -> None:
    """End logins: their refresh tokens stop working, and their access tokens at the next request."""
    await db.sessions.update_many({"_id": {"$in": session_ids}, "revoked_at": None},
                                  {"$set": {"revoked_at": now, "revoked_reason": reason}}, session=session)
    # Access tokens are checked against this list; entries go once such tokens have expired anyway.
    await db.users.update_one({"_id": user_id}, {"$pull": {"revoked_sessions": {"until": {"$lte": now}}}},
                              session=session)
    until = now + timedelta(seconds=access_ttl_s)
    await db.users.update_one(
        {"_id": user_id},
        {"$push": {"revoked_sessions": {"$each": [{"sid": sid, "until": until} for sid in session_ids]}},
         "$inc": {"sessions_version": 1}},
        session=session,
    )


async def bump_revocation_epoch(db: Database, session: AsyncClientSession) -> int:
    """The next revocation number; every instance forgets its cached logins when it sees it."""
    await db.auth_epoch.update_one({"_id": EPOCH_ID}, {"$inc": {"epoch": 1}}, upsert=True, session=session)
    doc = await db.auth_epoch.find_one({"_id": EPOCH_ID}, session=session)
    return int((doc or {}).get("epoch", 0))


async def revocation_epoch(db: Database) -> int:
    doc = await db.auth_epoch.find_one({"_id": EPOCH_ID})
    return int((doc or {}).get("epoch", 0))


async def set_password(db: Database, user_id: str, password_hash: str, now: datetime, *, must_change: bool,
                       session: AsyncClientSession) -> None:
    await db.users.update_one(
        {"_id": user_id},
        {"$set": {"password_hash": password_hash, "password_changed_at": now, "must_change_password": must_change}},
        session=session,
    )


# --- instances that cache logins -----------------------------------------------------------------


async def register_listener(db: Database, instance_id: str, seen: int, expires_at: datetime) -> None:
    await db.auth_listeners.update_one({"_id": instance_id}, {"$set": {"expires_at": expires_at},
                                                              "$max": {"seen": seen}}, upsert=True)


async def acknowledge(db: Database, instance_id: str, seen: int) -> None:
    await db.auth_listeners.update_one({"_id": instance_id}, {"$max": {"seen": seen}})


async def unregister_listener(db: Database, instance_id: str) -> None:
    await db.auth_listeners.delete_one({"_id": instance_id})


async def listeners_behind(db: Database, epoch: int, now: datetime, except_instance: str) -> list[str]:
    """Live instances that have not yet forgotten what they cached before `epoch`."""
    docs = await db.auth_listeners.find(
        {"_id": {"$ne": except_instance}, "expires_at": {"$gt": now}, "seen": {"$lt": epoch}}, {"_id": 1}
    ).to_list()
    return [d["_id"] for d in docs]


# --- signing keys --------------------------------------------------------------------------------


async def first_use_of_key(db: Database, kid: str, now: datetime) -> datetime:
    """When this signing key was first used by any instance (recorded now if never)."""
    await db.signing_keys.update_one({"_id": kid}, {"$setOnInsert": {"first_used_at": now}}, upsert=True)
    doc = await db.signing_keys.find_one({"_id": kid})
    first: datetime = (doc or {}).get("first_used_at", now)
    return first


# --- login failures ------------------------------------------------------------------------------


async def throttle_docs(db: Database, account_key: str, address_lock_key: str) -> dict[str, Doc]:
    docs = await db.login_failures.find({"_id": {"$in": [account_key, address_lock_key]}}).to_list()
    return {d["_id"]: d for d in docs}


async def save_account_failures(db: Database, key: str, state: dict[str, Any], expires_at: datetime,
                                session: AsyncClientSession) -> None:
    await db.login_failures.update_one({"_id": key}, {"$set": {**state, "expires_at": expires_at}}, upsert=True,
                                       session=session)


async def clear_account_failures(db: Database, key: str, session: AsyncClientSession) -> None:
    await db.login_failures.delete_one({"_id": key}, session=session)


async def note_address_failure(db: Database, address: str, username_key: str, now: datetime, expires_at: datetime,
                               session: AsyncClientSession) -> int:
    """Remember that `address` failed on this username; returns how many usernames it failed on lately."""
    await db.login_failures.update_one(
        {"_id": f"address:{address}:{username_key}"},
        {"$set": {"address": address, "at": now, "expires_at": expires_at}}, upsert=True, session=session,
    )
    return await db.login_failures.count_documents({"address": address, "expires_at": {"$gt": now}},
                                                   session=session)


async def lock_address(db: Database, key: str, until: datetime, session: AsyncClientSession) -> None:
    await db.login_failures.update_one({"_id": key}, {"$set": {"locked_until": until, "expires_at": until}},
                                       upsert=True, session=session)


# --- download tickets ----------------------------------------------------------------------------


async def insert_ticket(db: Database, digest: str, user_id: str, session_id: str, target: str, now: datetime,
                        expires_at: datetime) -> None:
    await db.download_tickets.insert_one({"_id": digest, "user_id": user_id, "session_id": session_id,
                                          "target": target, "issued_at": now, "expires_at": expires_at,
                                          "used_at": None})


async def redeem_ticket(db: Database, digest: str, target: str, now: datetime) -> Doc | None:
    """The ticket, marked used, if it is unused, unexpired and for this target; else None."""
    result = await db.download_tickets.update_one(
        {"_id": digest, "used_at": None, "target": target, "expires_at": {"$gt": now}},
        {"$set": {"used_at": now}},
    )
    if result.modified_count != 1:
        return None
    return await db.download_tickets.find_one({"_id": digest})
