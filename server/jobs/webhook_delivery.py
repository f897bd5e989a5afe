"""Sends queued webhook deliveries: signed per Standard Webhooks, retried with backoff and jitter on
timeouts, connection errors, 5xx and 429; a subscription whose deliveries keep failing is disabled and
a `webhook.subscription_disabled` event tells the admins."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp

from schemas.events import WebhookSubscriptionDisabled
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Doc
from server.jobs.loop import PollingLoop
from server.storage import webhooks
from server.webhooks import retry, signing
from server.webhooks.targets import GuardedResolver, TargetRefused, check_target

log = logging.getLogger("branch_audit.webhooks")

RESPONSE_READ_LIMIT = 4096  # receivers' bodies are not needed; read a little so the connection is reusable


@dataclass
class DeliveryPolicy:
    timeout_s: float = 10.0
    concurrency: int = 4
    claim_s: float = 60.0  # a claimed delivery is retried by anyone after this, should its worker die
    disable_after: int = 10  # consecutive deliveries given up on
    backoff: retry.Backoff = field(default_factory=retry.Backoff)


@dataclass(frozen=True)
class AttemptOutcome:
    status_code: int | None
    error: str | None
    duration_ms: float
    retry_after: str | None = None
    refused: bool = False  # the target is not allowed: permanent


class DeliveryWorker(PollingLoop):
    """One pass delivers everything due; the job repeats passes."""

    name = "webhook_delivery"

    def __init__(self, services: Services, *, policy: DeliveryPolicy | None = None, poll_s: float = 1.0,
                 rng: random.Random | None = None) -> None:
        super().__init__(poll_s=poll_s)
        self.services = services
        self.policy = policy or DeliveryPolicy()
        self.rng = rng or random.Random()
        self._http: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            allow_private = self.services.settings.webhook_allow_private
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow_private),
                                             limit=self.policy.concurrency * 2)
            timeout = aiohttp.ClientTimeout(total=self.policy.timeout_s)
            self._http = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def deliver_due(self) -> int:
        """Attempt every delivery due now; returns how many attempts were made."""
        attempts = 0
        if not await webhooks.anything_due(self.services.db, self.services.clock.now()):
            return 0
        while not self.stopping:  # on stop, the deliveries in flight finish and nothing new is claimed
            claimed = await self._claim(self.policy.concurrency)
            if not claimed:
                return attempts
            await asyncio.gather(*(self._deliver(d) for d in claimed))
            attempts += len(claimed)
        return attempts

    async def _claim(self, limit: int) -> list[Doc]:
        claimed: list[Doc] = []
        now = self.services.clock.now()
        claim_for = timedelta(seconds=self.policy.claim_s)
        while len(claimed) < limit:
            found = await webhooks.claim_due(self.services.db, now, self.services.instance_id, claim_for)
            if found is None:
                break
            claimed.append(found)
        return claimed

    async def _deliver(self, delivery: Doc) -> None:
        db = self.services.db
        subscription = await webhooks.subscription(db, delivery["subscription_id"])
        now = self.services.clock.now()
        if subscription is None or not subscription.get("active", True):
            await webhooks.cancel(db, delivery, now, "subscription inactive or deleted")
            return
        outcome = await self._post(subscription, delivery)
        verdict = retry.FAILED if outcome.refused else retry.classify(outcome.status_code)
        attempts = int(delivery.get("attempts", 0)) + 1
        changes: dict[str, Any] = {"last_status_code": outcome.status_code, "last_error": outcome.error,
                                   "last_attempt_at": now}
        if verdict == retry.DELIVERED:
            changes |= {"status": webhooks.DELIVERED, "delivered_at": now}
        elif verdict == retry.RETRY and attempts < self.policy.backoff.max_attempts:
            requested = retry.retry_after(outcome.retry_after, now)
            changes |= {"status": webhooks.PENDING,
                        "next_attempt_at": now + self.policy.backoff.delay(attempts, self.rng, requested)}
        else:
            changes |= {"status": webhooks.FAILED}
        attempt = {"at": now, "status_code": outcome.status_code,
                   "duration_ms": round(outcome.duration_ms, 1), "error": outcome.error}
        if not await webhooks.record_attempt(db, delivery, changes, attempt):
            return  # our claim ran out and another worker owns the delivery now
        log.info("webhook attempt", extra={"delivery_id": delivery["_id"], "status_code": outcome.status_code,
                                           "error": outcome.error, "outcome": changes["status"]})
        if changes["status"] == webhooks.DELIVERED:
            await webhooks.note_delivered(db, subscription["_id"])
        elif changes["status"] == webhooks.FAILED:
            await self._count_failure(subscription["_id"], outcome.error or f"HTTP {outcome.status_code}")

    async def _post(self, subscription: Doc, delivery: Doc) -> AttemptOutcome:
        body = delivery["body"].encode("utf-8")
        timestamp = int(self.services.clock.now().timestamp())
        secrets = signing.signing_secrets(subscription, self.services.clock.now())  # two during a rotation
        headers = signing.headers(secrets, delivery["event_id"], timestamp, body)
        started = time.perf_counter()

        def elapsed() -> float:
            return (time.perf_counter() - started) * 1000

        try:
            # Checked again at delivery: DNS may have changed since the subscription was made.
            allow_private = self.services.settings.webhook_allow_private
            await check_target(subscription["url"], allow_private=allow_private)
            async with self._client().post(subscription["url"], data=body, headers=headers,
                                           allow_redirects=False) as response:
                await response.content.read(RESPONSE_READ_LIMIT)
                error = None if response.status < 300 else f"HTTP {response.status}"
                return AttemptOutcome(response.status, error, elapsed(), response.headers.get("Retry-After"))
        except TargetRefused as exc:
            return AttemptOutcome(None, f"target refused: {exc}", elapsed(), refused=True)
        except TimeoutError:
            return AttemptOutcome(None, f"timed out after {self.policy.timeout_s:g} s", elapsed())
        except aiohttp.ClientError as exc:
            return AttemptOutcome(None, f"{type(exc).__name__}: {exc}"[:500], elapsed())

    async def _count_failure(self, subscription_id: str, error: str) -> None:
        counted = await webhooks.note_failed(self.services.db, subscription_id, error)
        if counted is None or not counted.get("active"):
            return
        if counted["consecutive_failures"] < self.policy.disable_after:
            return
        reason = f"{counted['consecutive_failures']} consecutive deliveries failed; last: {error}"

        async def work(uow: UnitOfWork) -> None:
            disabled = await webhooks.disable(uow.db, subscription_id, uow.now, reason, uow.session)
            if disabled is None:
                return  # another worker disabled it first
            uow.emit(WebhookSubscriptionDisabled(subscription_id=subscription_id, url=disabled["url"],
                                                 consecutive_failures=disabled["consecutive_failures"],
                                                 last_error=error),
                     subject_type="webhook_subscription", subject_id=subscription_id)
            uow.record("webhook.disable", "webhook_subscription", subscription_id, {"reason": reason})

        await self.services.transact(ActorInfo.system("webhooks"), work)
        log.warning("webhook subscription disabled",
                    extra={"subscription_id": subscription_id, "reason": reason})

    async def one_pass(self) -> int:
        return await self.deliver_due()

    async def after_stop(self) -> None:
        await self.close()


async def deliver_due(services: Services, *, policy: DeliveryPolicy | None = None,
                      rng: random.Random | None = None) -> int:
    """One delivery pass without sleeping (tests); backoff times come from services.clock."""
    worker = DeliveryWorker(services, policy=policy, rng=rng)
    try:
        return await worker.deliver_due()
    finally:
        await worker.close()


def jobs(services: Services) -> list[DeliveryWorker]:
    return [DeliveryWorker(services)]
