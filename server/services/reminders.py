"""Reminders, escalation and the daily digest: the commands the reminder job (server.jobs.scheduler) runs,
with MongoDB as the source of truth.

The sweep reads the rectifications whose `next_reminder_at` has come (an index range: its cost follows
the number of due reminders, not of open items). For each it plans the one reminder to send now (after
downtime the latest step that fell due, never a burst) and, in one transaction, claims the step with a
conditional update on the values it read, writes the notifications and records `reminder.sent`
(plus `rectification.overdue` / `rectification.escalated` on crossing those thresholds). Two sweeps
racing for one item conflict inside the transaction; the loser's retry no longer matches the claim, so
each step is sent exactly once whatever the number of instances.

The digest cron runs every quarter of an hour because branches live in several time zones; each branch
head gets one digest per local date (a marker written in the digest's transaction), once their local
digest time has passed and before the quiet hours start.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from schemas.rectification_events import RectificationEscalated, RectificationOverdue, ReminderSent
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Database, Doc
from server.domain.reminders import ReminderPlan, ReminderPolicy, roles_for_level, step_kind
from server.notify import channels as notify
from server.notify.messages import format_local, item_text, rectification_data, rectification_params, render
from server.services.rectifications import event_base
from server.storage import notifications as inbox
from server.storage import rectifications as store

log = logging.getLogger("branch_audit.reminders")

SWEEP_BATCH = 500
# Items claimed and recorded per transaction: one durable commit for several reminders. A conflict with
# another instance retries the whole transaction, whose claims then skip what the other one sent.
PER_TRANSACTION = 50
DIGEST_LIST_LIMIT = 20


@dataclass
class _Directory:
    """Who to tell, looked up once per sweep: region managers, compliance, and recipients' settings."""

    db: Database
    managers: dict[str, str | None] = field(default_factory=dict)
    compliance: list[str] | None = None
    recipients: dict[str, notify.Recipient] = field(default_factory=dict)

    async def recipient_ids(self, rect: Doc, level: int) -> list[str]:
        roles = roles_for_level(level)
        ids: list[str] = []
        if "branch_head" in roles and rect.get("assignee_id"):
            ids.append(rect["assignee_id"])
        if "regional_manager" in roles and rect.get("region_id"):
            region_id = rect["region_id"]
            if region_id not in self.managers:
                region = await self.db.regions.find_one({"_id": region_id}, {"manager_user_id": 1})
                self.managers[region_id] = (region or {}).get("manager_user_id")
            if self.managers[region_id]:
                ids.append(str(self.managers[region_id]))
        if "compliance" in roles:
            if self.compliance is None:
                self.compliance = await notify.users_with_role(self.db, "compliance")
            ids.extend(self.compliance)
        return list(dict.fromkeys(ids))

    async def load(self, rects: list[Doc]) -> None:
        """Prefetch the assignees of a batch (managers and compliance are few and cached lazily)."""
        missing = [r.get("assignee_id") for r in rects if r.get("assignee_id") not in self.recipients]
        self.recipients.update(await notify.load_recipients(self.db, missing))

    async def resolve(self, ids: list[str]) -> list[notify.Recipient]:
        missing = [i for i in ids if i not in self.recipients]
        if missing:
            self.recipients.update(await notify.load_recipients(self.db, missing))
        return [self.recipients[i] for i in ids if i in self.recipients]


def _reminder_message(
    policy: ReminderPolicy, rect: Doc, plan: ReminderPlan, recipient: notify.Recipient, now: datetime
) -> Any:
    kind = step_kind(policy, plan.step)
    days = max(0, (now - rect["due_at"]).days)
    if recipient.user_id != rect.get("assignee_id") and kind == "overdue":
        template = "reminder.escalated"
    else:
        template = f"reminder.{kind}"
    return render(
        template,
        recipient.language,
        rectification_params(rect, recipient.language, days=max(days, 1)),
        data=rectification_data(rect, step=plan.step, level=plan.level),
    )


@dataclass(frozen=True)
class _Due:
    """One item's reminder, planned outside the transaction that claims and records it."""

    rect: Doc
    plan: ReminderPlan
    level: int
    recipients: list[notify.Recipient]


async def _prepare(
    services: Services, rect: Doc, now: datetime, policy: ReminderPolicy, directory: _Directory
) -> _Due | None:
    timezone = rect.get("timezone") or "UTC"
    plan = policy.plan(rect["due_at"], rect["reminder_step"], now, timezone)
    if plan is None:  # stored time disagrees with the schedule (the policy changed): realign, send nothing
        fixed = policy.delivery_time(rect["due_at"], rect["reminder_step"], timezone)
        await store.claim_reminder(services.db, None, rect, {"next_reminder_at": fixed})
        return None
    level = max(plan.level, int(rect.get("escalation_level") or 0))
    recipients = await directory.resolve(await directory.recipient_ids(rect, level))
    return _Due(rect, plan, level, recipients)


async def _record(
    uow: UnitOfWork, due: _Due, now: datetime, policy: ReminderPolicy, channels: Sequence[notify.Channel]
) -> bool:
    """Claim the step and write what it sends; False when another sweep already claimed it."""
    rect, plan, level = due.rect, due.plan, due.level
    claimed = await store.claim_reminder(
        uow.db,
        uow.session,
        rect,
        {
            "next_reminder_at": plan.next_at,
            "reminder_step": plan.next_step,
            "last_reminded_at": now,
            "escalation_level": level,
            "overdue": bool(rect.get("overdue")) or plan.overdue,
        },
    )
    if not claimed:
        return False
    subject = {"subject_type": "rectification", "subject_id": rect["_id"], "branch_id": rect["branch_id"],
               "audit_id": rect["audit_id"]}
    for recipient in due.recipients:
        await notify.deliver(uow, recipient, _reminder_message(policy, rect, plan, recipient, now), channels)
        uow.emit(
            ReminderSent(
                rectification_id=rect["_id"],
                recipient_id=recipient.user_id,
                level=level,
                step=plan.step,
                branch_id=rect["branch_id"],
                due_at=rect["due_at"],
                skipped_steps=plan.skipped,
            ),
            **subject,
        )
    base = event_base(rect)
    if plan.overdue and not rect.get("overdue"):
        uow.emit(RectificationOverdue(**base), region_id=rect.get("region_id"), **subject)
        uow.record("rectification.overdue", "rectification", rect["_id"], {"due_at": rect["due_at"].isoformat()},
                   audit_id=rect["audit_id"], branch_id=rect["branch_id"])
    if level > int(rect.get("escalation_level") or 0):
        ids = [r.user_id for r in due.recipients]
        uow.emit(RectificationEscalated(**base, level=level, recipient_ids=ids), region_id=rect.get("region_id"),
                 **subject)
        uow.record("rectification.escalate", "rectification", rect["_id"], {"level": level, "recipients": ids},
                   audit_id=rect["audit_id"], branch_id=rect["branch_id"])
    return True


async def _send_chunk(
    services: Services, chunk: list[_Due], now: datetime, policy: ReminderPolicy,
    channels: Sequence[notify.Channel],
) -> int:
    """One transaction (one durable commit) for several items; if it fails, item by item so one bad
    item cannot hold back the others. A claim that fails rolls back with its transaction, so the item
    stays due for the next sweep."""

    async def work(uow: UnitOfWork) -> int:
        sent = 0
        for due in chunk:
            sent += await _record(uow, due, now, policy, channels)
        return sent

    try:
        return await services.transact(ActorInfo.system("reminders"), work)
    except Exception:
        if len(chunk) == 1:
            log.exception("reminder failed", extra={"rectification_id": chunk[0].rect["_id"]})
            return 0
    sent = 0
    for due in chunk:
        sent += await _send_chunk(services, [due], now, policy, channels)
    return sent


async def send_due_reminders(
    services: Services, now: datetime, *, batch: int = SWEEP_BATCH, per_transaction: int = PER_TRANSACTION
) -> int:
    """Send every reminder due at `now` once; returns how many items were reminded by this call."""
    policy = services.reminder_policy
    channels = notify.channels_of(services)
    directory = _Directory(services.db)
    attempted: set[str] = set()
    sent = 0
    while True:
        found = await store.due_for_reminder(services.db, now, batch)
        fresh = [r for r in found if r["_id"] not in attempted]
        if not fresh:
            break
        await directory.load(fresh)
        planned: list[_Due] = []
        for rect in fresh:
            attempted.add(rect["_id"])
            prepared = await _prepare(services, rect, now, policy, directory)
            if prepared is not None:
                planned.append(prepared)
        for i in range(0, len(planned), per_transaction):
            sent += await _send_chunk(services, planned[i : i + per_transaction], now, policy, channels)
        if len(found) < batch:
            break
    if sent:
        log.info("reminders sent", extra={"count": sent})
    return sent


# --- daily digest ---------------------------------------------------------------------------------------


def _digest_lines(items: list[Doc], language: str) -> list[str]:
    return [
        f"{item_text(r, language)} - {format_local(r['due_at'], r.get('timezone') or 'UTC', language)}"
        for r in items[:DIGEST_LIST_LIMIT]
    ]


async def send_digests(services: Services, now: datetime) -> int:
    """Send the digests due at `now`; one per branch head and local date, whichever instance runs it."""
    policy = services.reminder_policy
    channels = notify.channels_of(services)
    branches = await services.db.branches.find(
        {"head_user_id": {"$ne": None}}, {"head_user_id": 1, "timezone": 1}
    ).to_list()
    by_head: dict[str, list[Doc]] = defaultdict(list)
    for branch in branches:
        by_head[branch["head_user_id"]].append(branch)
    sent = 0
    for head_id, owned in sorted(by_head.items()):
        local_date = policy.digest_date(now, owned[0].get("timezone") or "UTC")
        if local_date is None:
            continue
        marker = f"{head_id}:{local_date.isoformat()}"
        if await inbox.digest_sent(services.db, marker):
            continue
        items = await store.open_for_branches(services.db, [b["_id"] for b in owned])
        if not items:
            continue
        recipients = await notify.load_recipients(services.db, [head_id])
        if head_id not in recipients:
            continue
        recipient = recipients[head_id]
        overdue = [r for r in items if r["due_at"] < now]
        due_soon = [r for r in items if now <= r["due_at"] <= now + policy.due_soon]
        message = render(
            "digest",
            recipient.language,
            {"open": len(items), "due_soon": len(due_soon), "overdue": len(overdue)},
            lines=_digest_lines(items, recipient.language),
            data={
                "date": local_date.isoformat(),
                "open": len(items),
                "due_soon": len(due_soon),
                "overdue": len(overdue),
                "rectification_ids": [r["_id"] for r in items[:50]],
            },
        )

        async def work(
            uow: UnitOfWork,
            marker: str = marker,
            recipient: notify.Recipient = recipient,
            message: Any = message,
        ) -> None:
            await inbox.claim_digest(uow.db, uow.session, marker, recipient.user_id, uow.now)
            await notify.deliver(uow, recipient, message, channels)

        try:
            await services.transact(ActorInfo.system("digest"), work)
        except DuplicateKeyError:
            continue  # another instance sent it
        sent += 1
    return sent
