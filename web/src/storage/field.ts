// The field user's work in IndexedDB: audits, answers, photos and the outbox that carries them to the
// server. Every change is written here first; the outbox entry is written in the same transaction.
import { userDb } from "./db.ts";
import type { ActionKind, AnswerPayload, OutboxAction } from "../sync/outbox.ts";
import type { AnswerRecord, AuditRecord, PhotoRecord } from "./records.ts";

export function newId(): string {
  return crypto.randomUUID();
}

export function nowIso(): string {
  return new Date().toISOString();
}

/** Notify this tab's screens and other tabs that the outbox changed (the engine drains on it). */
export const outboxChanged = new EventTarget();
let channel: BroadcastChannel | null = null;
function broadcast(): BroadcastChannel | null {
  if (channel === null && typeof BroadcastChannel !== "undefined") {
    channel = new BroadcastChannel("branch-audit:outbox");
    channel.onmessage = () => outboxChanged.dispatchEvent(new Event("change"));
  }
  return channel;
}
export function announceOutboxChange(): void {
  outboxChanged.dispatchEvent(new Event("change"));
  broadcast()?.postMessage("change");
}
/** Hear other tabs' outbox changes too (opened by the engine, never at import time). */
export function listenToOtherTabs(): void {
  broadcast();
}

function action(auditId: string, seq: number, kind: ActionKind, payload: Record<string, unknown>): OutboxAction {
  return {
    id: newId(), audit_id: auditId, seq, kind, payload, state: "queued", attempts: 0, next_at: 0,
    last_error: null, last_status: null, created_at: nowIso(),
  };
}

type Tx = import("idb").IDBPTransaction<import("./db.ts").UserSchema, ("counters" | "outbox" | "audits" | "answers" | "photos")[], "readwrite">;

async function nextSeq(tx: Tx): Promise<number> {
  const counters = tx.objectStore("counters");
  const seq = ((await counters.get("outbox_seq")) ?? 0) + 1;
  await counters.put(seq, "outbox_seq");
  return seq;
}

/** Create the audit locally and queue its start. */
export async function startAudit(userId: string, audit: AuditRecord, startBody: Record<string, unknown>): Promise<void> {
  const db = await userDb(userId);
  const tx = db.transaction(["counters", "outbox", "audits", "answers", "photos"], "readwrite");
  await tx.objectStore("audits").put(audit);
  await tx.objectStore("outbox").put(action(audit.id, await nextSeq(tx), "start", startBody));
  await tx.done;
  announceOutboxChange();
}

export function answerPayload(answer: AnswerRecord): AnswerPayload {
  return {
    item_id: answer.item_id, value: answer.value, na: answer.na, note: answer.note,
    answered_at: answer.answered_at, fixed_on_spot: answer.fixed_on_spot,
  };
}

/** Store an answer and queue it. */
export async function saveAnswer(userId: string, answer: AnswerRecord, queue = true): Promise<void> {
  const db = await userDb(userId);
  const tx = db.transaction(["counters", "outbox", "audits", "answers", "photos"], "readwrite");
  await tx.objectStore("answers").put(answer);
  if (queue) {
    // A refused (parked) answer to this item is superseded by the new one.
    const outbox = tx.objectStore("outbox");
    for (const old of await outbox.index("by_audit_seq").getAll(IDBKeyRange.bound([answer.audit_id, 0], [answer.audit_id, Infinity]))) {
      if (old.kind === "answers" && old.state === "parked" && old.payload.item_id === answer.item_id) await outbox.delete(old.id);
    }
    await outbox.put(action(answer.audit_id, await nextSeq(tx), "answers", { ...answerPayload(answer) }));
  }
  await tx.done;
  if (queue) announceOutboxChange();
}

/** Store a photo's bytes and queue its upload. */
export async function savePhoto(userId: string, photo: PhotoRecord): Promise<void> {
  const db = await userDb(userId);
  const tx = db.transaction(["counters", "outbox", "audits", "answers", "photos"], "readwrite");
  await tx.objectStore("photos").put(photo);
  const upload = action(photo.audit_id, await nextSeq(tx), "photo", { photo_id: photo.id, item_id: photo.item_id });
  upload.length = photo.size;
  upload.offset = 0;
  upload.upload_url = null;
  await tx.objectStore("outbox").put(upload);
  await tx.done;
  announceOutboxChange();
}

/** Remove a photo: unsent, its upload is dropped; sent, a delete is queued. */
export async function removePhoto(userId: string, photo: PhotoRecord): Promise<void> {
  const db = await userDb(userId);
  const tx = db.transaction(["counters", "outbox", "audits", "answers", "photos"], "readwrite");
  const outbox = tx.objectStore("outbox");
  const pending = (await outbox.index("by_audit_seq").getAll(IDBKeyRange.bound([photo.audit_id, 0], [photo.audit_id, Infinity])))
    .find((a) => a.kind === "photo" && a.payload.photo_id === photo.id);
  // Not sent yet, or refused by the server: there is no photo on the server to delete.
  if (pending && (!pending.upload_url || pending.state === "parked")) await outbox.delete(pending.id);
  else await outbox.put(action(photo.audit_id, await nextSeq(tx), "photo_delete", { photo_id: photo.id, server_photo_id: photo.server_photo_id }));
  await tx.objectStore("photos").delete(photo.id);
  await tx.done;
  announceOutboxChange();
}

/** Queue the submission (after everything queued before it). */
export async function queueSubmit(userId: string, auditId: string): Promise<void> {
  const db = await userDb(userId);
  const tx = db.transaction(["counters", "outbox", "audits", "answers", "photos"], "readwrite");
  const audit = await tx.objectStore("audits").get(auditId);
  if (audit) await tx.objectStore("audits").put({ ...audit, status: "ready", updated_at: nowIso() });
  const outbox = tx.objectStore("outbox");
  const queued = (await outbox.index("by_audit_seq").getAll(IDBKeyRange.bound([auditId, 0], [auditId, Infinity]))).filter((a) => a.kind === "submit");
  // Submitting again after a refusal: the same submission goes to the back of the queue.
  for (const old of queued) await outbox.delete(old.id);
  await outbox.put(action(auditId, await nextSeq(tx), "submit", {}));
  await tx.done;
  announceOutboxChange();
}

export async function auditActions(userId: string, auditId: string): Promise<OutboxAction[]> {
  const db = await userDb(userId);
  return db.getAllFromIndex("outbox", "by_audit_seq", IDBKeyRange.bound([auditId, 0], [auditId, Infinity]));
}

export async function answersOf(userId: string, auditId: string): Promise<AnswerRecord[]> {
  return (await userDb(userId)).getAllFromIndex("answers", "by_audit", auditId);
}

export async function photosOf(userId: string, auditId: string): Promise<PhotoRecord[]> {
  return (await userDb(userId)).getAllFromIndex("photos", "by_audit", auditId);
}
